//! Rounds of one instance pushing the same document, merged in turn.
//!
//! Two rounds that read a document before either writes it both merge
//! against the same stored copy, and the one that writes second must merge
//! again under the write lock, where every other writer waits for it. In a
//! rush that is one document in nine. Instead, a round claims the
//! documents it pushes before reading them; a document another round of
//! this instance has claimed is read only once that round's write has
//! committed, so that it is merged once, against what that round stored.
//!
//! Claims order merging; they are not what keeps writes correct. A round
//! still checks each document's heads under the write lock and merges
//! again when another instance, or a write that does not claim, moved it.
//!
//! A round waits only for rounds that claimed before it: claims are taken
//! for a whole round at once, so no two rounds wait for each other.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The documents rounds of this instance have claimed and not yet written.
#[derive(Default)]
pub(super) struct Claims {
    /// By document id, the latest round to claim it: its write is over
    /// when the sender behind the receiver is dropped.
    by_doc: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// A round's claim on its documents, given up when dropped: once its write
/// has committed, or it failed.
pub(super) struct Claim<'a> {
    claims: &'a Claims,
    ids: Vec<String>,
    own: watch::Receiver<()>,
    _done: watch::Sender<()>,
}

impl Claims {
    /// Claims `ids` for a round, after waiting for the rounds that claimed
    /// any of them earlier to give their claims up.
    pub(super) async fn claim(&self, ids: &[String]) -> Claim<'_> {
        let (done, own) = watch::channel(());
        let earlier: Vec<watch::Receiver<()>> = {
            let mut by_doc = self.by_doc.lock().expect("never poisoned");
            ids.iter()
                .filter_map(|id| by_doc.insert(id.clone(), own.clone()))
                // Not its own: a round may name a document twice (a push
                // and a sync message).
                .filter(|earlier| !earlier.same_channel(&own))
                .collect()
        };
        let claim = Claim {
            claims: self,
            ids: ids.to_vec(),
            own,
            _done: done,
        };
        for mut earlier in earlier {
            // Ends with an error once that round's sender is dropped (at
            // once if it already is): the only way it ends, since nothing
            // is ever sent.
            let _ = earlier.changed().await;
        }
        claim
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut by_doc = self.claims.by_doc.lock().expect("never poisoned");
        for id in &self.ids {
            // A later round's claim on the document stays.
            if by_doc.get(id).is_some_and(|r| r.same_channel(&self.own)) {
                by_doc.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// Whether a claim is still waiting a short while later.
    async fn waits(claim: impl Future + Unpin) -> bool {
        tokio::time::timeout(Duration::from_millis(50), claim)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_claimed_document_waits_for_the_earlier_claim_only() {
        let claims = Claims::default();
        let first = claims.claim(&ids(&["a", "b"])).await;
        // Another document: at once.
        let other = claims.claim(&ids(&["c"])).await;
        let b_c = ids(&["b", "c"]);
        let second = claims.claim(&b_c);
        tokio::pin!(second);
        assert!(waits(&mut second).await, "waits while b and c are claimed");
        drop(first);
        assert!(waits(&mut second).await, "still waits for c");
        drop(other);
        let second = second.await;
        // The third waits for the second, which claimed b last.
        let b = ids(&["b"]);
        let third = claims.claim(&b);
        tokio::pin!(third);
        assert!(waits(&mut third).await);
        drop(second);
        drop(third.await);
        assert!(
            claims.by_doc.lock().unwrap().is_empty(),
            "every claim given up"
        );
    }

    #[tokio::test]
    async fn a_round_naming_a_document_twice_does_not_wait_for_itself() {
        let claims = Claims::default();
        let twice = ids(&["a", "a"]);
        let claim = tokio::time::timeout(Duration::from_secs(5), claims.claim(&twice))
            .await
            .expect("claimed at once");
        drop(claim);
        assert!(claims.by_doc.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_claim_given_up_early_leaves_the_later_one() {
        let claims = Claims::default();
        let first = claims.claim(&ids(&["a"])).await;
        let a = ids(&["a"]);
        let second = claims.claim(&a);
        tokio::pin!(second);
        assert!(waits(&mut second).await);
        drop(first);
        let second = second.await;
        assert_eq!(
            claims.by_doc.lock().unwrap().len(),
            1,
            "the second's claim stays"
        );
        drop(second);
        assert!(claims.by_doc.lock().unwrap().is_empty());
    }
}
