//! The event log behind `berth events`: daemonless, in podman's manner.
//!
//! There is no daemon to broadcast what happens, so every berth process that changes something
//! appends a row to the `events` table of the store's database, and `berth events` reads the
//! table (the backlog since `--since`) and then polls it for new rows. SQLite makes concurrent
//! writers safe; the table keeps only the newest [`KEEP`] rows.
//!
//! Events carry Docker's names and attributes (moby `daemon/events.go`): a container event's
//! attributes are its labels plus `image` and `name`, with extras such as `exitCode` (`die`)
//! or `signal` (`kill`). Recording never fails the operation it records: a failed insert is
//! logged and dropped, as an event Docker could not deliver is.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};

use crate::{Engine, EngineError, Result};

/// How many events the log keeps; older ones are trimmed.
pub const KEEP: i64 = 10_000;
/// Trimming runs on every this-many inserts, so a single insert stays a single statement.
const TRIM_EVERY: i64 = 256;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    time_nano  INTEGER NOT NULL,
    type       TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'
);";

/// Creates the events table if this database does not have it yet.
pub fn ensure_schema(conn: &Connection) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    }
    Ok(())
}

/// One recorded event, in the shape of Docker's `events.Message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the log: later events have larger ids.
    pub id: i64,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
    /// `container`, `image`, `network` or `volume`.
    pub kind: String,
    pub action: String,
    pub actor: String,
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
        let attributes: String = row.get(5)?;
        Ok(Event {
            id: row.get(0)?,
            time_nano: row.get(1)?,
            kind: row.get(2)?,
            action: row.get(3)?,
            actor: row.get(4)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        })
    }

    /// Docker's JSON message (`docker events --format '{{json .}}'`), field order included.
    /// `status`, `id` and `from` are the pre-1.22 fields Docker still fills for containers
    /// and images.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        if matches!(self.kind.as_str(), "container" | "image") {
            doc.insert("status".into(), json!(self.action));
            doc.insert("id".into(), json!(self.actor));
            if let Some(from) = self.attributes.get("image") {
                doc.insert("from".into(), json!(from));
            }
        }
        doc.insert("Type".into(), json!(self.kind));
        doc.insert("Action".into(), json!(self.action));
        doc.insert(
            "Actor".into(),
            json!({ "ID": self.actor, "Attributes": self.attributes }),
        );
        doc.insert("scope".into(), json!("local"));
        doc.insert("time".into(), json!(self.time_nano / 1_000_000_000));
        doc.insert("timeNano".into(), json!(self.time_nano));
        Value::Object(doc)
    }

    /// The fields as a Go template sees Docker's struct (`{{.Actor.ID}}`, `{{.TimeNano}}`).
    pub fn to_template_value(&self) -> Value {
        let from = self.attributes.get("image").cloned().unwrap_or_default();
        json!({
            "Status": self.action,
            "ID": self.actor,
            "From": from,
            "Type": self.kind,
            "Action": self.action,
            "Actor": { "ID": self.actor, "Attributes": self.attributes },
            "Scope": "local",
            "Time": self.time_nano / 1_000_000_000,
            "TimeNano": self.time_nano,
        })
    }
}

fn now_nanos() -> i64 {
    crate::container::now_nanos()
}

/// Drops rows beyond the newest [`KEEP`], every [`TRIM_EVERY`] inserts.
fn trim(conn: &Connection) -> rusqlite::Result<()> {
    let last = conn.last_insert_rowid();
    if last % TRIM_EVERY == 0 {
        conn.execute("DELETE FROM events WHERE id <= ?1", [last - KEEP])?;
    }
    Ok(())
}

fn report(result: rusqlite::Result<()>, kind: &str, action: &str) {
    if let Err(err) = result {
        tracing::warn!(%err, kind, action, "failed to record an event");
    }
}

/// Records an event whose attributes the caller has at hand.
pub fn record(
    conn: &Connection,
    kind: &str,
    action: &str,
    actor: &str,
    attributes: &Map<String, Value>,
) {
    let attributes = Value::Object(attributes.clone()).to_string();
    let result = conn
        .execute(
            "INSERT INTO events (time_nano, type, action, actor, attributes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now_nanos(), kind, action, actor, attributes],
        )
        .and_then(|_| trim(conn));
    report(result, kind, action);
}

/// Records a container event with Docker's attributes: `extra`, then the container's labels,
/// then `image` and `name`, read from its row in the same statement (cheap enough for the
/// monitor and `run --rm`: no row is parsed here). Must run before the row is deleted.
pub fn container(conn: &Connection, id: &str, action: &str, extra: &[(&str, &str)]) {
    let extra: Map<String, Value> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let result = conn
        .execute(
            "INSERT INTO events (time_nano, type, action, actor, attributes)
             SELECT ?1, 'container', ?2, id,
                 json_patch(json_patch(?3, COALESCE(json_extract(config, '$.Labels'), '{}')),
                            json_object('image', image, 'name', name))
             FROM containers WHERE id = ?4",
            params![now_nanos(), action, Value::Object(extra).to_string(), id],
        )
        .and_then(|_| trim(conn));
    report(result, "container", action);
}

/// A container's `die`, with its exit code.
pub fn died(conn: &Connection, id: &str, exit_code: i32) {
    container(conn, id, "die", &[("exitCode", &exit_code.to_string())]);
}

/// A volume event (`create`, `destroy`), inside the transaction that makes the change.
pub fn volume(conn: &Connection, action: &str, name: &str, driver: &str) {
    let mut attributes = Map::new();
    attributes.insert("driver".into(), json!(driver));
    record(conn, "volume", action, name, &attributes);
}

/// Attributes of an event whose actor has a name: `name` plus the labels.
fn named(name: &str, labels: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut attributes: Map<String, Value> =
        labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    attributes.insert("name".into(), json!(name));
    attributes
}

impl Engine {
    fn conn(&self) -> &Connection {
        self.store().db().conn()
    }

    /// A container event; see [`container`].
    pub(crate) fn container_event(&self, id: &str, action: &str, extra: &[(&str, &str)]) {
        container(self.conn(), id, action, extra);
    }

    /// `exec_create` and `exec_start` of a started exec (Docker names the command in the
    /// action); returns the exec's ID for its `exec_die`.
    pub(crate) fn exec_started(&self, container_id: &str, cmd: &[String]) -> String {
        let exec_id = hex::encode(rand::random::<[u8; 32]>());
        let cmd = cmd.join(" ");
        for action in ["exec_create", "exec_start"] {
            self.container_event(
                container_id,
                &format!("{action}: {cmd}"),
                &[("execID", &exec_id)],
            );
        }
        exec_id
    }

    /// `exec_die` with the exec's exit code.
    pub(crate) fn exec_died(&self, container_id: &str, exec_id: &str, code: i32) {
        self.container_event(
            container_id,
            "exec_die",
            &[("execID", exec_id), ("exitCode", &code.to_string())],
        );
    }

    /// `commit` of a container (moby's attributes), then a `tag` event per new name.
    pub(crate) fn committed(
        &self,
        container_id: &str,
        image: &berth_image::Digest,
        comment: Option<&str>,
        tags: &[berth_image::reference::Reference],
    ) {
        let image_ref = tags
            .first()
            .map(|t| t.familiar_string())
            .unwrap_or_default();
        self.container_event(
            container_id,
            "commit",
            &[
                ("comment", comment.unwrap_or("")),
                ("imageID", &image.to_string()),
                ("imageRef", &image_ref),
            ],
        );
        for tag in tags {
            self.image_event("tag", &image.to_string(), &tag.familiar_string());
        }
    }

    /// An image event: `actor` is the image ID (or, for pull and push, the reference), `name`
    /// the reference it concerns; the image's labels join the attributes when it exists.
    pub(crate) fn image_event(&self, action: &str, actor: &str, name: &str) {
        let labels = self
            .store()
            .resolve(actor)
            .and_then(|id| self.store().image_config(&id))
            .map(|(_, config)| config.config.labels.unwrap_or_default())
            .unwrap_or_default();
        let labels: BTreeMap<String, String> = labels.into_iter().collect();
        record(self.conn(), "image", action, actor, &named(name, &labels));
    }

    /// An image event for an image ID, named by its ID (Docker's `delete`, `untag`, `import`,
    /// `load`, `save`).
    pub(crate) fn image_id_event(&self, action: &str, id: &berth_image::Digest) {
        let id = id.to_string();
        self.image_event(action, &id, &id);
    }

    /// `untag` and `delete` events of an `rmi` or prune step of image `id`.
    pub(crate) fn image_removed(
        &self,
        id: &berth_image::Digest,
        removed: &[berth_image::store::RemovedImage],
    ) {
        for step in removed {
            let action = match step {
                berth_image::store::RemovedImage::Untagged(_) => "untag",
                berth_image::store::RemovedImage::Deleted(_) => "delete",
            };
            self.image_id_event(action, id);
        }
    }

    /// A network event; `container` is set for `connect` and `disconnect`.
    pub(crate) fn network_event(
        &self,
        action: &str,
        net: &crate::network::Network,
        container: Option<&str>,
    ) {
        let mut attributes = Map::new();
        if let Some(c) = container {
            attributes.insert("container".into(), json!(c));
        }
        attributes.insert("name".into(), json!(net.name));
        attributes.insert("type".into(), json!(net.driver));
        record(self.conn(), "network", action, &net.id, &attributes);
    }

    /// The id of the newest event, 0 when there is none: where "from now on" starts.
    pub fn last_event_id(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
    }

    /// Events after `after_id` with `since <= time <= until`, oldest first.
    pub fn events_after(
        &self,
        after_id: i64,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<Event>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, time_nano, type, action, actor, attributes FROM events
             WHERE id > ?1 AND time_nano >= ?2 AND time_nano <= ?3 ORDER BY id",
        )?;
        let rows = stmt.query_map(
            params![
                after_id,
                since.unwrap_or(i64::MIN),
                until.unwrap_or(i64::MAX)
            ],
            Event::from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// SQLite's `data_version`: changes whenever another connection commits, so a follower
    /// only queries when there can be something new.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

/// `--filter` of `events`, with moby's matching rules (`daemon/events/filter.go`): values of
/// one key are OR-ed, keys AND-ed, every `label` must match; `container`, `network` and
/// `volume` match the actor's ID or name by prefix, `image` matches exactly with or without
/// the tag, `event=exec_create` also matches `exec_create: CMD`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Parses `key=value` flags; unknown keys are refused as Docker refuses them.
    pub fn parse(raw: &[String]) -> Result<EventFilter> {
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in raw {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {f}"
                ))
            })?;
            let k = k.trim().to_ascii_lowercase();
            if !matches!(
                k.as_str(),
                "type"
                    | "event"
                    | "container"
                    | "image"
                    | "network"
                    | "volume"
                    | "label"
                    | "scope"
                    | "daemon"
                    | "plugin"
                    | "node"
                    | "service"
                    | "secret"
                    | "config"
            ) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
            filters.entry(k).or_default().push(v.to_string());
        }
        Ok(EventFilter { filters })
    }

    fn exact(&self, key: &str, candidates: &[&str]) -> bool {
        self.filters
            .get(key)
            .is_none_or(|values| values.iter().any(|v| candidates.contains(&v.as_str())))
    }

    fn prefix(&self, key: &str, candidates: &[&str]) -> bool {
        self.filters.get(key).is_none_or(|values| {
            values.iter().any(|v| {
                candidates
                    .iter()
                    .any(|c| !c.is_empty() && c.starts_with(v.as_str()))
            })
        })
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        let attr = |k: &str| event.attributes.get(k).map_or("", String::as_str);
        let name = attr("name");
        let by_actor = |kind: &str| {
            if event.kind == kind {
                self.prefix(kind, &[&event.actor, name])
            } else {
                !self.filters.contains_key(kind)
            }
        };
        let action_matches = match self.filters.get("event") {
            None => true,
            Some(values) => values.iter().any(|v| {
                v == &event.action
                    || (matches!(v.as_str(), "exec_create" | "exec_start" | "health_status")
                        && event.action.starts_with(v.as_str()))
            }),
        };
        let image_name = if event.kind == "image" {
            name
        } else {
            attr("image")
        };
        let image_matches = self.exact(
            "image",
            &[
                &event.actor,
                image_name,
                strip_tag(&event.actor),
                strip_tag(image_name),
            ],
        );
        let container_matches = match event.kind.as_str() {
            "container" => by_actor("container"),
            _ => self.exact("container", &[attr("container")]),
        };
        let labels_match = self.filters.get("label").is_none_or(|labels| {
            labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => event.attributes.get(k).is_some_and(|have| have == v),
                None => event.attributes.contains_key(l.as_str()),
            })
        });
        action_matches
            && self.exact("type", &[&event.kind])
            && self.exact("scope", &["local"])
            && container_matches
            && by_actor("network")
            && by_actor("volume")
            && image_matches
            && labels_match
            && ["daemon", "plugin", "node", "service", "secret", "config"]
                .iter()
                .all(|k| !self.filters.contains_key(*k))
    }
}

/// `busybox:latest` → `busybox`; a registry port (`host:5000/x`) is not a tag.
fn strip_tag(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') && !name.starts_with("sha256:") => &name[..i],
        _ => name,
    }
}

/// Why a follower woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The poll interval passed: look for new events.
    Tick,
    /// SIGINT or SIGTERM arrived.
    Interrupted,
    /// Whoever read the output went away (the read end of the pipe closed).
    OutputClosed,
}

/// Waits between polls of the log for a follower, and notices what ends following: a
/// SIGINT/SIGTERM (blocked and read from a signalfd, so they end the loop instead of the
/// process) or the reader of `output` going away.
pub struct Follower {
    signals: nix::sys::signalfd::SignalFd,
}

impl Follower {
    /// Blocks SIGINT and SIGTERM for this (single-threaded) process and opens a signalfd.
    pub fn new() -> Result<Follower> {
        use nix::sys::signal::{SigSet, Signal};
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        let io = |e: nix::Error| EngineError::Io {
            action: "watch",
            path: "signals".into(),
            source: std::io::Error::from(e),
        };
        mask.thread_block().map_err(io)?;
        let signals = nix::sys::signalfd::SignalFd::with_flags(
            &mask,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        )
        .map_err(io)?;
        Ok(Follower { signals })
    }

    /// Sleeps up to `interval`; returns early on a signal or when `output` is closed.
    pub fn wait(&self, output: BorrowedFd<'_>, interval: Duration) -> Wake {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            // No requested events: a pipe's writer still gets POLLERR once the reader is gone.
            PollFd::new(output, PollFlags::empty()),
        ];
        let timeout = PollTimeout::try_from(interval).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, timeout).is_err() {
            return Wake::Tick;
        }
        let has =
            |fd: &PollFd<'_>, flags: PollFlags| fd.revents().is_some_and(|r| r.intersects(flags));
        if has(&fds[0], PollFlags::POLLIN) {
            return Wake::Interrupted;
        }
        if output.as_raw_fd() >= 0 && has(&fds[1], PollFlags::POLLERR | PollFlags::POLLHUP) {
            return Wake::OutputClosed;
        }
        Wake::Tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, action: &str, actor: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            id: 1,
            time_nano: 1_000_000_000,
            kind: kind.into(),
            action: action.into(),
            actor: actor.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn filter(raw: &[&str]) -> EventFilter {
        EventFilter::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_follow_moby() {
        let start = event(
            "container",
            "start",
            "abcdef",
            &[
                ("image", "busybox:latest"),
                ("name", "web"),
                ("tier", "front"),
            ],
        );
        assert!(filter(&[]).matches(&start));
        assert!(filter(&["type=container", "event=start"]).matches(&start));
        assert!(filter(&["event=die", "event=start"]).matches(&start));
        assert!(!filter(&["event=die"]).matches(&start));
        assert!(filter(&["container=web"]).matches(&start));
        assert!(filter(&["container=abc"]).matches(&start));
        assert!(!filter(&["container=db"]).matches(&start));
        assert!(filter(&["image=busybox"]).matches(&start));
        assert!(!filter(&["image=alpine"]).matches(&start));
        assert!(filter(&["label=tier"]).matches(&start));
        assert!(filter(&["label=tier=front"]).matches(&start));
        assert!(!filter(&["label=tier=front", "label=x"]).matches(&start));
        assert!(!filter(&["type=image"]).matches(&start));
        assert!(!filter(&["network=web"]).matches(&start));

        let exec = event("container", "exec_create: sh -c true", "abcdef", &[]);
        assert!(filter(&["event=exec_create"]).matches(&exec));

        let connect = event(
            "network",
            "connect",
            "n1",
            &[("container", "abcdef"), ("name", "front")],
        );
        assert!(filter(&["network=front"]).matches(&connect));
        assert!(filter(&["container=abcdef"]).matches(&connect));
        assert!(!filter(&["volume=front"]).matches(&connect));
    }

    #[test]
    fn unknown_filter_is_refused() {
        let err = EventFilter::parse(&["colour=red".into()]).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'colour'");
        assert!(EventFilter::parse(&["type".into()]).is_err());
    }

    #[test]
    fn tags_are_stripped_but_not_ports() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(strip_tag("sha256:abc"), "sha256:abc");
    }

    #[test]
    fn json_has_docker_field_order() {
        let e = event(
            "container",
            "die",
            "abc",
            &[("exitCode", "0"), ("image", "busybox")],
        );
        assert_eq!(
            e.to_json().to_string(),
            r#"{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"0","image":"busybox"}},"scope":"local","time":1,"timeNano":1000000000}"#
        );
    }

    #[test]
    fn log_is_trimmed_and_container_attributes_come_from_the_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(
            "CREATE TABLE containers (id TEXT, name TEXT, image TEXT, config TEXT);
             INSERT INTO containers VALUES ('c1', 'web', 'busybox', '{\"Labels\":{\"tier\":\"front\",\"name\":\"label\"}}');",
        )
        .unwrap();
        container(&conn, "c1", "die", &[("exitCode", "3")]);
        let attrs: String = conn
            .query_row("SELECT attributes FROM events", [], |r| r.get(0))
            .unwrap();
        let attrs: BTreeMap<String, String> = serde_json::from_str(&attrs).unwrap();
        assert_eq!(attrs["exitCode"], "3");
        assert_eq!(attrs["tier"], "front");
        assert_eq!(
            attrs["name"], "web",
            "the container's name wins over a label"
        );
        assert_eq!(attrs["image"], "busybox");

        for _ in 0..KEEP + 2 * TRIM_EVERY {
            record(&conn, "volume", "create", "v", &Map::new());
        }
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert!(count <= KEEP + TRIM_EVERY, "{count} rows kept");
        assert!(count >= KEEP);
    }
}
