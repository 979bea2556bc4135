//! Client arbitration (P4Runtime spec, "Client Arbitration and Controller
//! Replication"), per role of the one device.
//!
//! The primary of a role is the stream whose election id was, when sent, at least
//! the highest id ever seen for the role (`past`). There is no automatic promotion
//! (spec ≥ 1.1): when the primary leaves or demotes itself, the role has no primary
//! until a controller sends an id ≥ `past` (the departed primary's id may be reused).
//! Every advisory carries `past` (unset before any primary) and the receiver's
//! status: OK for the primary, ALREADY_EXISTS for backups while a primary exists,
//! NOT_FOUND while none does. Unset election ids never become primary.
//!
//! Roles are named (`Role.name`); every role has full access to the pipeline (no role
//! config scheme is defined), which the docs say.

use std::collections::HashMap;

use sluice_proto::google::rpc::Status as RpcStatus;
use sluice_proto::p4::v1 as pb;
use tonic::{Code, Status};

/// A stream's id (assigned by the server).
pub type StreamId = u64;

/// An election id (`Uint128`) as a number.
pub fn election(e: &Option<pb::Uint128>) -> Option<u128> {
    e.as_ref().map(|e| ((e.high as u128) << 64) | e.low as u128)
}

fn uint128(v: u128) -> pb::Uint128 {
    pb::Uint128 { high: (v >> 64) as u64, low: v as u64 }
}

#[derive(Debug)]
struct Controller<T> {
    role: String,
    election: Option<u128>,
    sink: T,
}

#[derive(Debug, Default)]
struct RoleState {
    primary: Option<StreamId>,
    past: Option<u128>,
}

/// The arbitration state. `T` is how a stream is reached (a channel sender).
#[derive(Debug)]
pub struct Arbiter<T> {
    device_id: u64,
    streams: HashMap<StreamId, Controller<T>>,
    roles: HashMap<String, RoleState>,
}

/// An advisory to send: to whom, what.
pub type Notice<T> = (T, pb::MasterArbitrationUpdate);

impl<T: Clone> Arbiter<T> {
    /// Arbitration for device `device_id`.
    pub fn new(device_id: u64) -> Self {
        Arbiter { device_id, streams: HashMap::new(), roles: HashMap::new() }
    }

    fn advisory(&self, role: &str, to: StreamId) -> pb::MasterArbitrationUpdate {
        let r = self.roles.get(role);
        let primary = r.and_then(|r| r.primary);
        let (code, message) = match primary {
            Some(p) if p == to => (Code::Ok, "primary"),
            Some(_) => (Code::AlreadyExists, "backup: another controller is primary"),
            None => (Code::NotFound, "backup: no primary"),
        };
        pb::MasterArbitrationUpdate {
            device_id: self.device_id,
            role: (!role.is_empty()).then(|| pb::Role { name: role.to_owned(), ..Default::default() }),
            election_id: r.and_then(|r| r.past).map(uint128),
            status: Some(RpcStatus { code: code as i32, message: message.into(), details: vec![] }),
        }
    }

    fn notices(&self, role: &str, to: impl Iterator<Item = StreamId>) -> Vec<Notice<T>> {
        to.filter_map(|s| self.streams.get(&s).map(|c| (c.sink.clone(), self.advisory(role, s)))).collect()
    }

    fn everyone(&self, role: &str) -> Vec<StreamId> {
        let mut v: Vec<StreamId> = self.streams.iter().filter(|(_, c)| c.role == role).map(|(s, _)| *s).collect();
        v.sort_unstable();
        v
    }

    /// Handle a `MasterArbitrationUpdate` from `stream` (reached through `sink`).
    /// An error ends the stream with that status.
    pub fn update(
        &mut self,
        stream: StreamId,
        sink: T,
        u: &pb::MasterArbitrationUpdate,
    ) -> Result<Vec<Notice<T>>, Status> {
        let role = u.role.as_ref().map(|r| r.name.clone()).unwrap_or_default();
        let id = election(&u.election_id);
        if let Some(c) = self.streams.get(&stream) {
            if u.device_id != self.device_id {
                return Err(Status::failed_precondition(format!(
                    "this stream arbitrated for device {}, not {}",
                    self.device_id, u.device_id
                )));
            }
            if c.role != role {
                return Err(Status::failed_precondition("a stream's role cannot change: open a new stream"));
            }
        } else if u.device_id != self.device_id {
            return Err(Status::not_found(format!(
                "no device {} (this switch is device {})",
                u.device_id, self.device_id
            )));
        }
        if id.is_some() && self.streams.iter().any(|(s, c)| *s != stream && c.role == role && c.election == id) {
            return Err(Status::invalid_argument(format!(
                "election id {} is already used by another live controller of role {role:?}",
                id.unwrap_or(0)
            )));
        }
        let was_primary = self.roles.get(&role).and_then(|r| r.primary) == Some(stream);
        self.streams.insert(stream, Controller { role: role.clone(), election: id, sink });
        let r = self.roles.entry(role.clone()).or_default();
        let wins = matches!((id, r.past), (Some(i), Some(p)) if i >= p) || matches!((id, r.past), (Some(_), None));
        if wins {
            r.primary = Some(stream);
            r.past = id;
            return Ok(self.notices(&role, self.everyone(&role).into_iter()));
        }
        if was_primary {
            r.primary = None;
            return Ok(self.notices(&role, self.everyone(&role).into_iter()));
        }
        Ok(self.notices(&role, std::iter::once(stream)))
    }

    /// `stream` is gone; advisories for the others of its role.
    pub fn remove(&mut self, stream: StreamId) -> Vec<Notice<T>> {
        let Some(c) = self.streams.remove(&stream) else { return vec![] };
        let r = self.roles.entry(c.role.clone()).or_default();
        if r.primary != Some(stream) {
            return vec![];
        }
        r.primary = None;
        self.notices(&c.role, self.everyone(&c.role).into_iter())
    }

    /// Whether a request with `device_id`, `role` and `election_id` comes from the
    /// primary (for Write and SetForwardingPipelineConfig).
    pub fn check_primary(&self, device_id: u64, role: &str, e: &Option<pb::Uint128>) -> Result<(), Status> {
        if device_id != self.device_id {
            return Err(Status::not_found(format!("no device {device_id} (this switch is device {})", self.device_id)));
        }
        let primary = self.roles.get(role).and_then(|r| r.primary).and_then(|s| self.streams.get(&s));
        match (primary, election(e)) {
            (Some(p), Some(id)) if p.election == Some(id) => Ok(()),
            (Some(p), _) => Err(Status::permission_denied(format!(
                "not the primary of role {role:?}: the primary's election id is {}, the request's {}",
                p.election.unwrap_or(0),
                election(e).map(|x| x.to_string()).unwrap_or_else(|| "unset".into())
            ))),
            (None, _) => Err(Status::permission_denied(format!(
                "role {role:?} has no primary controller: open a StreamChannel and arbitrate first"
            ))),
        }
    }

    /// Whether `stream` is the primary of its role.
    pub fn is_primary(&self, stream: StreamId) -> bool {
        self.streams.get(&stream).is_some_and(|c| self.roles.get(&c.role).and_then(|r| r.primary) == Some(stream))
    }

    /// Whether `stream` has arbitrated.
    pub fn knows(&self, stream: StreamId) -> bool {
        self.streams.contains_key(&stream)
    }

    /// How to reach the primary of every role (packet-in goes to each).
    pub fn primaries(&self) -> Vec<T> {
        self.roles
            .values()
            .filter_map(|r| r.primary)
            .filter_map(|s| self.streams.get(&s))
            .map(|c| c.sink.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(device: u64, e: Option<u128>) -> pb::MasterArbitrationUpdate {
        pb::MasterArbitrationUpdate { device_id: device, election_id: e.map(uint128), ..Default::default() }
    }

    fn codes(n: &[Notice<u32>]) -> Vec<(u32, i32, Option<u128>)> {
        n.iter().map(|(to, m)| (*to, m.status.as_ref().unwrap().code, election(&m.election_id))).collect()
    }

    const OK: i32 = Code::Ok as i32;
    const EXISTS: i32 = Code::AlreadyExists as i32;
    const NONE: i32 = Code::NotFound as i32;

    #[test]
    fn highest_wins_backups_are_told_and_there_is_no_automatic_promotion() {
        let mut a = Arbiter::<u32>::new(1);
        assert_eq!(a.update(1, 100, &upd(2, Some(1))).unwrap_err().code(), Code::NotFound);
        assert_eq!(codes(&a.update(1, 100, &upd(1, Some(1))).unwrap()), vec![(100, OK, Some(1))]);
        // A higher id takes over; both are told.
        assert_eq!(
            codes(&a.update(2, 200, &upd(1, Some(2))).unwrap()),
            vec![(100, EXISTS, Some(2)), (200, OK, Some(2))]
        );
        assert_eq!(a.check_primary(1, "", &Some(uint128(1))).unwrap_err().code(), Code::PermissionDenied);
        a.check_primary(1, "", &Some(uint128(2))).unwrap();
        assert_eq!(a.check_primary(9, "", &Some(uint128(2))).unwrap_err().code(), Code::NotFound);
        // A lower id joins as a backup: only it is told.
        assert_eq!(codes(&a.update(3, 300, &upd(1, Some(0))).unwrap()), vec![(300, EXISTS, Some(2))]);
        // The same id as a live controller is refused.
        assert_eq!(a.update(4, 400, &upd(1, Some(2))).unwrap_err().code(), Code::InvalidArgument);
        // Unset ids are backups, never primary.
        assert_eq!(codes(&a.update(5, 500, &upd(1, None)).unwrap()), vec![(500, EXISTS, Some(2))]);
        // The primary leaves: everyone hears there is none; nobody is promoted.
        assert_eq!(codes(&a.remove(2)), vec![(100, NONE, Some(2)), (300, NONE, Some(2)), (500, NONE, Some(2))]);
        assert!(!a.is_primary(1));
        assert_eq!(a.check_primary(1, "", &Some(uint128(1))).unwrap_err().code(), Code::PermissionDenied);
        // Re-sending a lower id does not make it primary; the departed id may be reused.
        assert_eq!(codes(&a.update(1, 100, &upd(1, Some(1))).unwrap()), vec![(100, NONE, Some(2))]);
        assert_eq!(codes(&a.update(1, 100, &upd(1, Some(2))).unwrap())[0], (100, OK, Some(2)));
        assert!(a.is_primary(1));
        // A primary demoting itself leaves the role without a primary.
        let n = a.update(1, 100, &upd(1, Some(1))).unwrap();
        assert!(codes(&n).iter().all(|(_, c, _)| *c == NONE), "{:?}", codes(&n));
        // A stream's device cannot change.
        assert_eq!(a.update(1, 100, &upd(7, Some(9))).unwrap_err().code(), Code::FailedPrecondition);
    }

    #[test]
    fn roles_elect_separately() {
        let mut a = Arbiter::<u32>::new(1);
        let mut r = upd(1, Some(5));
        r.role = Some(pb::Role { name: "ro".into(), ..Default::default() });
        assert_eq!(codes(&a.update(1, 100, &r).unwrap()), vec![(100, OK, Some(5))]);
        assert_eq!(codes(&a.update(2, 200, &upd(1, Some(1))).unwrap()), vec![(200, OK, Some(1))]);
        a.check_primary(1, "ro", &Some(uint128(5))).unwrap();
        a.check_primary(1, "", &Some(uint128(1))).unwrap();
        assert_eq!(a.primaries().len(), 2);
        let mut other = upd(1, Some(6));
        other.role = Some(pb::Role { name: "x".into(), ..Default::default() });
        assert_eq!(a.update(1, 100, &other).unwrap_err().code(), Code::FailedPrecondition);
    }
}
