//! Group commit, apart from what is written: writes queue, and whoever
//! gets the turn first takes every write queued by then and writes them
//! together.
//!
//! A write is answered as soon as the group that took it has committed.
//! Its own turn may come much later: every round waits for the turn in the
//! order it came, and each one ahead of it that finds new writes queued
//! leads a group of its own. So a round waits for whichever comes first,
//! its outcome or its turn.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::engine::EngineError;

/// Writes of kind `W`, each answered with a `D`, committed in groups.
pub(super) struct GroupCommit<W, D> {
    queue: Mutex<Vec<Waiting<W, D>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// A write queued, and where its outcome goes.
pub(super) struct Waiting<W, D> {
    pub(super) work: W,
    pub(super) done: oneshot::Sender<Result<D, EngineError>>,
}

impl<W, D> Default for GroupCommit<W, D> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: Arc::default(),
        }
    }
}

impl<W: Send + 'static, D: Send + 'static> GroupCommit<W, D> {
    /// Queues `work` and gives its outcome once the group that took it has
    /// been written. When this call gets the turn with writes still
    /// queued, `write` writes them as one group, in a task of its own (a
    /// request dropped, its client gone, must not take the others' writes
    /// with it), and must answer each of them.
    pub(super) async fn run<F, Fut>(&self, work: W, write: F) -> Result<D, EngineError>
    where
        F: FnOnce(Vec<Waiting<W, D>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (done, mut outcome) = oneshot::channel();
        self.queue
            .lock()
            .expect("never poisoned")
            .push(Waiting { work, done });
        let ended = || EngineError::internal("a group commit ended without an outcome");
        // Waiting for the turn is given up (and leaves the turn's queue)
        // when the outcome comes first.
        let turn = tokio::select! {
            biased;
            result = &mut outcome => return result.map_err(|_| ended())?,
            turn = self.turn.clone().lock_owned() => turn,
        };
        let group = std::mem::take(&mut *self.queue.lock().expect("never poisoned"));
        if group.is_empty() {
            // Another leader took this write; its outcome is on its way.
            drop(turn);
        } else {
            let written = write(group);
            tokio::spawn(async move {
                written.await;
                drop(turn);
            });
        }
        outcome.await.map_err(|_| ended())?
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    /// Groups of numbers whose writes wait for a gate the test opens; each
    /// write is answered with its number times ten.
    #[derive(Default)]
    struct Gated {
        commits: GroupCommit<u32, u32>,
        gates: Mutex<HashMap<u32, Arc<Notify>>>,
        groups: Mutex<Vec<Vec<u32>>>,
    }

    impl Gated {
        fn gate(&self, first: u32) -> Arc<Notify> {
            self.gates.lock().unwrap().entry(first).or_default().clone()
        }

        async fn run(self: Arc<Self>, work: u32) -> Result<u32, EngineError> {
            let this = self.clone();
            self.commits
                .run(work, move |group| async move {
                    let numbers: Vec<u32> = group.iter().map(|w| w.work).collect();
                    this.groups.lock().unwrap().push(numbers.clone());
                    this.gate(numbers[0]).notified().await;
                    for w in group {
                        let _ = w.done.send(Ok(w.work * 10));
                    }
                })
                .await
        }
    }

    async fn until(what: impl Fn() -> bool) {
        while !what() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Round 4 is written in the group round 2 leads, while round 3 waits
    /// for the turn ahead of it. Round 5 comes meanwhile, and its group
    /// does not end. Round 4 is answered all the same: it does not wait
    /// for a turn behind round 5's group.
    #[tokio::test]
    async fn a_write_is_answered_when_its_group_commits_not_when_its_turn_comes() {
        let g = Arc::new(Gated::default());
        let groups = |n: usize| {
            let g = g.clone();
            move || g.groups.lock().unwrap().len() == n
        };
        let one = tokio::spawn(g.clone().run(1));
        until(groups(1)).await;
        let two = tokio::spawn(g.clone().run(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let three = tokio::spawn(g.clone().run(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let four = tokio::spawn(g.clone().run(4));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Round 2 gets the turn once round 1's group ends, and takes 2, 3
        // and 4 together.
        g.gate(1).notify_one();
        assert_eq!(one.await.unwrap().unwrap(), 10);
        until(groups(2)).await;
        assert_eq!(g.groups.lock().unwrap()[1], vec![2, 3, 4]);
        let five = tokio::spawn(g.clone().run(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        g.gate(2).notify_one();
        assert_eq!(two.await.unwrap().unwrap(), 20);
        // The next turn leads round 5's group, which waits.
        until(groups(3)).await;
        assert_eq!(g.groups.lock().unwrap()[2], vec![5]);
        assert_eq!(three.await.unwrap().unwrap(), 30);
        let four = tokio::time::timeout(Duration::from_secs(10), four).await;
        assert_eq!(
            four.expect("round 4 waited for a turn it no longer needed")
                .unwrap()
                .unwrap(),
            40
        );
        assert!(!five.is_finished());
        g.gate(5).notify_one();
        assert_eq!(five.await.unwrap().unwrap(), 50);
    }
}
