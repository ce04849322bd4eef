//! Announces that the change feed grew, to the devices connected to any
//! instance (`GET /v1/events`).
//!
//! Every instance publishes after it commits a write that stored changes.
//! With PostgreSQL the announcement goes through `NOTIFY`, and every
//! instance (the publisher included) hears it through `LISTEN` and passes it
//! to its own connected devices; with SQLite there is one instance and the
//! announcement stays in process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};

const CHANNEL: &str = "gridsync_changes";

/// Announces that the change feed grew.
#[derive(Clone)]
pub struct Notifier {
    local: broadcast::Sender<i64>,
    postgres: Option<PgPool>,
    /// Open streams per device on this instance.
    streams: Arc<Mutex<HashMap<String, usize>>>,
    /// Becomes `true` when the server shuts down: every stream ends.
    closed: watch::Sender<bool>,
}

impl Notifier {
    /// A notifier for a single instance.
    pub fn local() -> Self {
        Self::new(None)
    }

    fn new(postgres: Option<PgPool>) -> Self {
        Self {
            local: broadcast::channel(256).0,
            postgres,
            streams: Default::default(),
            closed: watch::channel(false).0,
        }
    }

    /// A notifier shared by every instance on one PostgreSQL database.
    pub async fn postgres(pool: PgPool) -> Result<Self, sqlx::Error> {
        let notifier = Self::new(Some(pool.clone()));
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let forward = notifier.local.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(note) => {
                        if let Ok(seq) = note.payload().parse::<i64>() {
                            let _ = forward.send(seq);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener lost its connection; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(notifier)
    }

    /// Announces that the feed now reaches `seq`. Failure only delays
    /// devices until their next regular sync, so it is logged, not raised.
    ///
    /// On PostgreSQL the `NOTIFY` goes out from a task of its own: it needs
    /// a pooled connection, and when every connection is held by rounds
    /// waiting for the write lock, an answer that waited for one would wait
    /// for all of them.
    pub fn publish(&self, seq: i64) {
        match &self.postgres {
            Some(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let sent = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(seq.to_string())
                        .execute(&pool)
                        .await;
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "could not announce changes");
                    }
                });
            }
            None => {
                let _ = self.local.send(seq);
            }
        }
    }

    /// Hears every announcement from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.local.subscribe()
    }

    /// Becomes `true` once the server shuts down ([`Notifier::close`]).
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Ends every open stream, and every stream opened later: the server
    /// is shutting down.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Takes one of `device`'s `max` stream slots, or says it holds them
    /// all. The slot is given back when the returned guard drops.
    pub fn open_stream(&self, device: &str, max: usize) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let open = streams.entry(device.to_owned()).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        crate::metrics::event_streams(1.0);
        Some(StreamSlot {
            streams: self.streams.clone(),
            device: device.to_owned(),
        })
    }
}

/// One open stream of a device, counted until dropped.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    device: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = streams.get_mut(&self.device) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.device);
            }
        }
        crate::metrics::event_streams(-1.0);
    }
}
