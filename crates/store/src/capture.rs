//! PostgreSQL-side change capture: installs the capture triggers on a synced table (row
//! changes → `hubsync.outbox` + `NOTIFY hubsync_outbox`, in the writer's own transaction;
//! TRUNCATE refused unless opted in), and [`OutboxListener`], which turns notifications into
//! wake-ups on a channel and survives lost connections.
//!
//! The triggers are plain plpgsql (see the `V1__state` migration): no superuser, no
//! `wal_level = logical`, so they work on managed PostgreSQL. Writes made in a transaction
//! tagged with [`crate::tag_transaction`] are not captured.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use postgres_protocol::escape::{escape_identifier, escape_literal};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_postgres::AsyncMessage;

use crate::{
    Store,
    error::{Context as _, StoreError},
};

/// Channel the capture trigger notifies; the payload is the object name.
pub const OUTBOX_CHANNEL: &str = "hubsync_outbox";
/// Channel notified when a conflict gets a resolution; the payload is the conflict id.
pub const CONFLICTS_CHANNEL: &str = "hubsync_conflicts";
/// Channel notified when webhook events land in the inbox; the payload is the object name.
pub const INBOX_CHANNEL: &str = "hubsync_inbox";

/// Name of the row trigger on captured tables.
pub const CAPTURE_TRIGGER: &str = "hubsync_capture";
/// Name of the statement trigger that refuses TRUNCATE.
pub const TRUNCATE_TRIGGER: &str = "hubsync_no_truncate";

/// Which table to capture and which of its columns flow to HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// Schema of the synced table.
    pub schema: String,
    /// The synced table.
    pub table: String,
    /// HubSpot object the table holds (outbox entries carry it).
    pub object: String,
    /// Column identifying the row (its text form becomes the outbox `row_key`).
    pub key_column: String,
    /// Column holding the HubSpot id, if the table has one.
    pub id_column: Option<String>,
    /// Columns whose changes are sent to HubSpot.
    pub columns: Vec<String>,
}

impl CaptureSpec {
    /// `schema.table` with both parts quoted, for SQL text.
    pub fn source_table(&self) -> String {
        format!(
            "{}.{}",
            escape_identifier(&self.schema),
            escape_identifier(&self.table)
        )
    }
}

/// Installs or refreshes the capture and TRUNCATE triggers on a table and records it in
/// `hubsync.captured_tables`. Atomic per statement (`CREATE OR REPLACE TRIGGER`), so no
/// change slips through while the column list is refreshed; run it in a transaction to
/// tie it to the DDL that changed the table.
///
/// # Errors
/// [`StoreError::Invalid`] when the table or a column does not exist; database errors.
pub async fn install(client: &impl GenericClient, spec: &CaptureSpec) -> Result<(), StoreError> {
    let existing: Vec<String> = client
        .query(
            "SELECT a.attname FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&spec.schema, &spec.table],
        )
        .await
        .during("read the columns of a captured table")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if existing.is_empty() {
        return Err(StoreError::Invalid(format!(
            "cannot capture {}: no such table",
            spec.source_table()
        )));
    }
    let wanted = spec
        .columns
        .iter()
        .chain([&spec.key_column])
        .chain(spec.id_column.as_ref());
    for column in wanted {
        if !existing.contains(column) {
            return Err(StoreError::Invalid(format!(
                "cannot capture {}: no column {}",
                spec.source_table(),
                escape_identifier(column)
            )));
        }
    }
    let mut args = vec![
        escape_literal(&spec.object),
        escape_literal(&spec.key_column),
        escape_literal(spec.id_column.as_deref().unwrap_or("")),
    ];
    args.extend(spec.columns.iter().map(|c| escape_literal(c)));
    let table = spec.source_table();
    let sql = format!(
        "CREATE OR REPLACE TRIGGER {CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table} \
           FOR EACH ROW EXECUTE FUNCTION hubsync.capture_row({args}); \
         CREATE OR REPLACE TRIGGER {TRUNCATE_TRIGGER} BEFORE TRUNCATE ON {table} \
           FOR EACH STATEMENT EXECUTE FUNCTION hubsync.refuse_truncate();",
        args = args.join(", ")
    );
    client
        .batch_execute(&sql)
        .await
        .during("install capture triggers")?;
    client
        .execute(
            "INSERT INTO hubsync.captured_tables \
               (source_table, object, key_column, id_column, columns) \
             VALUES (format('%I.%I', $1::text, $6::text), $2, $3, $4, $5) \
             ON CONFLICT (source_table) DO UPDATE SET object = excluded.object, \
               key_column = excluded.key_column, id_column = excluded.id_column, \
               columns = excluded.columns, installed_at = now()",
            &[
                &spec.schema,
                &spec.object,
                &spec.key_column,
                &spec.id_column,
                &spec.columns,
                &spec.table,
            ],
        )
        .await
        .during("record a captured table")?;
    Ok(())
}

/// Removes the triggers from a table and forgets it (pending outbox entries stay).
///
/// # Errors
/// Database errors.
pub async fn remove(
    client: &impl GenericClient,
    schema: &str,
    table_name: &str,
) -> Result<(), StoreError> {
    let table = format!(
        "{}.{}",
        escape_identifier(schema),
        escape_identifier(table_name)
    );
    let sql = format!(
        "DROP TRIGGER IF EXISTS {CAPTURE_TRIGGER} ON {table}; \
         DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {table};"
    );
    client
        .batch_execute(&sql)
        .await
        .during("remove capture triggers")?;
    client
        .execute(
            "DELETE FROM hubsync.captured_tables WHERE source_table = format('%I.%I', $1::text, $2::text)",
            &[&schema, &table_name],
        )
        .await
        .during("forget a captured table")?;
    Ok(())
}

/// Lets (or stops letting) TRUNCATE empty a captured table's local copy.
///
/// # Errors
/// Database errors; [`StoreError::Invalid`] if the table is not captured.
pub async fn set_allow_truncate(
    client: &impl GenericClient,
    schema: &str,
    table: &str,
    allow: bool,
) -> Result<(), StoreError> {
    let n = client
        .execute(
            "UPDATE hubsync.captured_tables SET allow_truncate = $3 \
             WHERE source_table = format('%I.%I', $1::text, $2::text)",
            &[&schema, &table, &allow],
        )
        .await
        .during("set allow_truncate")?;
    if n == 0 {
        return Err(StoreError::Invalid(format!(
            "{}.{} is not captured",
            escape_identifier(schema),
            escape_identifier(table)
        )));
    }
    Ok(())
}

/// The tables with capture installed.
///
/// # Errors
/// Database errors.
pub async fn captured_tables(client: &impl GenericClient) -> Result<Vec<CaptureSpec>, StoreError> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, t.object, t.key_column, t.id_column, t.columns \
             FROM hubsync.captured_tables t \
             JOIN pg_class c ON c.oid = to_regclass(t.source_table) \
             JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY t.source_table",
            &[],
        )
        .await
        .during("list captured tables")?;
    Ok(rows
        .iter()
        .map(|r| CaptureSpec {
            schema: r.get(0),
            table: r.get(1),
            object: r.get(2),
            key_column: r.get(3),
            id_column: r.get(4),
            columns: r.get(5),
        })
        .collect())
}

/// What an [`OutboxListener`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// The listener (re)connected and is listening. Notifications sent while it was away
    /// are lost, so catch up from the table now.
    Connected,
    /// A notification arrived.
    Notified {
        /// The channel.
        channel: String,
        /// The payload (an object name or an id; a hint only).
        payload: String,
    },
}

/// How long to wait between reconnection attempts, at first and at most.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often an idle listener checks that its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Listens on a dedicated connection and forwards wake-ups. Reconnects with backoff when
/// the connection is lost, re-`LISTEN`s, and reports [`Wakeup::Connected`] each time.
/// Wake-ups are hints: when the consumer falls behind, surplus ones are dropped (the
/// consumer reads the table anyway). Dropping the listener stops it.
#[derive(Debug)]
pub struct OutboxListener {
    wakeups: mpsc::Receiver<Wakeup>,
    task: JoinHandle<()>,
}

impl OutboxListener {
    /// Listens on [`OUTBOX_CHANNEL`].
    pub fn start(store: Store) -> OutboxListener {
        Self::start_on(store, vec![OUTBOX_CHANNEL.to_owned()])
    }

    /// Listens on the given channels.
    pub fn start_on(store: Store, channels: Vec<String>) -> OutboxListener {
        let (tx, wakeups) = mpsc::channel(256);
        let task = tokio::spawn(listen_loop(store, channels, tx));
        OutboxListener { wakeups, task }
    }

    /// The next wake-up; `None` only if the listener task ended.
    pub async fn recv(&mut self) -> Option<Wakeup> {
        self.wakeups.recv().await
    }

    /// Takes every wake-up already queued without waiting; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.wakeups.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}

impl Drop for OutboxListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen_loop(store: Store, channels: Vec<String>, tx: mpsc::Sender<Wakeup>) {
    let mut delay = BACKOFF_START;
    loop {
        match listen_once(&store, &channels, &tx, &mut delay).await {
            Ok(Stop::ConsumerGone) => return,
            Ok(Stop::ConnectionLost) => {
                tracing::warn!("lost the LISTEN connection; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "cannot LISTEN for changes");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = tx.closed() => return,
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

enum Stop {
    ConsumerGone,
    ConnectionLost,
}

async fn listen_once(
    store: &Store,
    channels: &[String],
    tx: &mpsc::Sender<Wakeup>,
    delay: &mut Duration,
) -> Result<Stop, StoreError> {
    let mut conn = store.connect_dedicated().await?;
    let mut sql = String::from("SET application_name = 'hubsync-listener';");
    for channel in channels {
        sql.push_str(&format!(" LISTEN {};", escape_identifier(channel)));
    }
    conn.client().batch_execute(&sql).await.during("LISTEN")?;
    *delay = BACKOFF_START;
    if offer(tx, Wakeup::Connected) {
        return Ok(Stop::ConsumerGone);
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = conn.next_message() => match message {
                Some(AsyncMessage::Notification(n)) => {
                    let wakeup = Wakeup::Notified {
                        channel: n.channel().to_owned(),
                        payload: n.payload().to_owned(),
                    };
                    if offer(tx, wakeup) {
                        return Ok(Stop::ConsumerGone);
                    }
                }
                Some(_) => {}
                None => return Ok(Stop::ConnectionLost),
            },
            _ = ping.tick() => {
                let alive = tokio::time::timeout(PING_EVERY, conn.client().simple_query("")).await;
                if !matches!(alive, Ok(Ok(_))) {
                    return Ok(Stop::ConnectionLost);
                }
            }
            () = tx.closed() => return Ok(Stop::ConsumerGone),
        }
    }
}

/// Queues a wake-up unless the queue is full; returns true when the consumer is gone.
fn offer(tx: &mpsc::Sender<Wakeup>, wakeup: Wakeup) -> bool {
    matches!(
        tx.try_send(wakeup),
        Err(mpsc::error::TrySendError::Closed(_))
    )
}
