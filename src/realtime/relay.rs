//! Relay rules at work: an incoming event of a legacy frontend relayed under its outgoing name,
//! stored when its rule says so, and its acknowledgement answered (src/rules.rs has the rules).

use super::args::Args;
use super::delivery;
use super::layout;
use super::reply::{Reply, within_deadline};
use super::rooms::member_room;
use super::socket_user::{grant_of, user_label, user_of};
use crate::chat::{ChatError, Message, MessageText, RoomName, User};
use crate::rules::{AckMode, Action, CHAT_NAMESPACE, Rule, StoreIn, Target};
use crate::state::AppState;
use crate::store::{Announce, Appended, Draft};
use crate::telemetry::names;
use crate::wire::Command;
use futures_util::StreamExt;
use serde::Serialize;
use socketioxide::EmitWithAckError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::operators::BroadcastOperators;
use std::fmt;
use std::sync::Arc;

/// The label relayed events are counted under in the command metrics.
pub(super) const RELAY: &str = "relay";

/// Rooms one socket may be put in by join rules, whatever the configured limits.
const MAX_RULE_ROOMS: usize = 1000;

/// Puts the handlers of the rules of the socket's namespace on it.
pub(super) fn wire<A: Adapter>(socket: &SocketRef<A>, app: &AppState) {
    for rule in app.rules.of(socket.ns()) {
        let rule = rule.clone();
        socket.on(
            rule.on.clone(),
            move |socket: SocketRef<A>,
                  TryData(args): TryData<Args>,
                  State(app): State<AppState>,
                  reply: Reply<A>| {
                let rule = rule.clone();
                async move { relay(socket, rule, args, app, reply).await }
            },
        );
    }
}

/// `{ ok: true }`, with the stored message when the rule stores one.
#[derive(Debug, Serialize)]
struct Relayed {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message>,
}

/// Where one relayed event goes.
#[derive(Clone, Debug)]
enum Receivers {
    /// Every other socket of the namespace.
    Others,
    /// Every socket of the namespace: the others, and the sender (see [`echoes`]).
    Everyone,
    /// Every other socket in these rooms (none: nobody).
    Rooms(Vec<String>),
}

/// The room a rule relays to, and whether the client named it (in its payload) or the rule does.
struct TargetRoom {
    name: RoomName,
    named_by_client: bool,
}

impl TargetRoom {
    /// The room a target names (`None` for targets that name none), from the rule or from the
    /// event's first argument.
    fn named(to: &Target, args: &Args) -> Result<Option<Self>, ChatError> {
        let (raw, named_by_client) = match to {
            Target::Others | Target::Everyone | Target::SenderRooms => return Ok(None),
            Target::Room(room) => {
                return Ok(Some(Self {
                    name: room.clone(),
                    named_by_client: false,
                }));
            }
            Target::Argument => (
                args.first_str().ok_or_else(|| {
                    ChatError::bad_request("the event's first argument must be a room name")
                })?,
                true,
            ),
            Target::Field(field) => (
                args.field(field).ok_or_else(|| {
                    ChatError::bad_request(format!(
                        "the event's first argument must be an object with a room field '{field}'"
                    ))
                })?,
                true,
            ),
        };
        Ok(Some(Self {
            name: RoomName::parse(raw)?,
            named_by_client,
        }))
    }
}

impl Receivers {
    fn plan<A: Adapter>(
        socket: &SocketRef<A>,
        rule: &Rule,
        args: &Args,
    ) -> Result<(Self, Option<TargetRoom>), ChatError> {
        let room = match &rule.to {
            Target::Others => return Ok((Self::Others, None)),
            Target::Everyone => return Ok((Self::Everyone, None)),
            Target::SenderRooms => {
                let own = own_rooms(socket);
                // Rooms the socket is in that its token does not allow (a tab with a wider
                // token joined them for the user) are not the sender's to relay to.
                let grant = grant_of(socket)?;
                let rooms = socket
                    .rooms()
                    .into_iter()
                    .map(|r| r.into_owned())
                    .filter(|r| !own.contains(r) && grant.allows(r))
                    .collect();
                return Ok((Self::Rooms(rooms), None));
            }
            Target::Room(_) | Target::Argument | Target::Field(_) => {
                TargetRoom::named(&rule.to, args)?
                    .ok_or_else(|| ChatError::bad_request("this rule's target names no room"))?
            }
        };
        grant_of(socket)?.ensure_room(&room.name)?;
        Ok((Self::Rooms(vec![room.name.as_str().to_owned()]), Some(room)))
    }

    fn select<A: Adapter>(&self, socket: &SocketRef<A>) -> BroadcastOperators<A> {
        match self {
            Self::Others | Self::Everyone => socket.broadcast(),
            Self::Rooms(rooms) => socket.to(rooms.clone()),
        }
    }

    fn is_nobody(&self) -> bool {
        matches!(self, Self::Rooms(rooms) if rooms.is_empty())
    }
}

/// The rooms a socket is in for itself, not to hear others: its id's and its user's.
fn own_rooms<A: Adapter>(socket: &SocketRef<A>) -> [String; 3] {
    let user = user_of(socket);
    [
        socket.id.to_string(),
        user.as_ref()
            .map_or_else(|_| String::new(), |u| u.personal_room()),
        user.as_ref()
            .map_or_else(|_| String::new(), |u| u.limited_room()),
    ]
}

async fn relay<A: Adapter>(
    socket: SocketRef<A>,
    rule: Arc<Rule>,
    args: Result<Args, impl fmt::Display>,
    app: AppState,
    reply: Reply<A>,
) {
    // A relay costs what a message costs; joining or leaving a room by a rule, what a `join`
    // costs.
    let allowance = match rule.action {
        Action::Relay => Command::Message,
        Action::Join | Action::Leave => Command::Join,
    };
    let reply = if rule.ack == AckMode::Empty {
        reply.bare()
    } else {
        reply
    };
    let Some((reply, _turn)) = reply.admit(&app, RELAY, allowance) else {
        return;
    };
    if rule.action != Action::Relay {
        let moved = within_deadline(&app, move_socket(&socket, &rule, args, &app)).await;
        reply.send(RELAY, moved);
        return;
    }
    if rule.ack == AckMode::Receivers && reply.wants_ack() {
        let stored = within_deadline(&app, async {
            let planned = prepare(&socket, &rule, args, &app).await?;
            store(&rule, planned, &app).await
        })
        .await;
        match stored {
            // The receivers' answers are waited for outside the command deadline: the rule's
            // own timeout bounds them.
            Ok((args, receivers)) => {
                let answers = pass_through(&socket, &rule, &args, &receivers).await;
                reply.pass(RELAY, &answers);
            }
            Err(err) => reply.send::<()>(RELAY, Err(err)),
        }
        return;
    }
    let relayed = within_deadline(&app, async {
        let planned = prepare(&socket, &rule, args, &app).await?;
        announce(&socket, &rule, planned, &app).await
    })
    .await;
    reply.send(RELAY, relayed);
}

/// `join` and `leave` rules: the sender's socket enters or leaves the target room, and the
/// room's other sockets get the event when the rule names one.
async fn move_socket<A: Adapter>(
    socket: &SocketRef<A>,
    rule: &Arc<Rule>,
    args: Result<Args, impl fmt::Display>,
    app: &AppState,
) -> Result<Relayed, ChatError> {
    let (args, _) = parsed(socket, args)?;
    let (receivers, _) = Receivers::plan(socket, rule, &args)?;
    let Receivers::Rooms(rooms) = &receivers else {
        return Err(ChatError::bad_request(
            "this rule has no room to join or leave",
        ));
    };
    if rule.action == Action::Join {
        // A socket's rooms cost memory for as long as it lives: bounded whatever the limits.
        // The room of the socket's own id is Node's convention, not one the user joined.
        let own = socket.id.to_string();
        let held = socket.rooms().iter().filter(|r| **r != own).count();
        if held >= MAX_RULE_ROOMS {
            return Err(ChatError::forbidden(format!(
                "at most {MAX_RULE_ROOMS} rooms per socket; leave one first"
            )));
        }
        app.limits.another_room(held as u64)?;
        socket.join(rooms.clone());
    }
    if let Some(emit) = &rule.emit {
        delivery::emit_named(|| receivers.select(socket), emit, RELAY, &args).await;
    }
    if rule.action == Action::Leave {
        socket.leave(rooms.clone());
    }
    Ok(Relayed { message: None })
}

/// The event's arguments and its sender.
fn parsed<A: Adapter>(
    socket: &SocketRef<A>,
    args: Result<Args, impl fmt::Display>,
) -> Result<(Args, User), ChatError> {
    let args = args.map_err(|e| ChatError::bad_request(format!("unreadable arguments: {e}")))?;
    Ok((args, user_of(socket)?))
}

/// A relay that passed its checks, with what it stores.
struct Planned {
    args: Args,
    receivers: Receivers,
    draft: Option<Draft>,
}

async fn prepare<A: Adapter>(
    socket: &SocketRef<A>,
    rule: &Rule,
    args: Result<Args, impl fmt::Display>,
    app: &AppState,
) -> Result<Planned, ChatError> {
    let (args, user) = parsed(socket, args)?;
    let (receivers, target) = Receivers::plan(socket, rule, &args)?;
    if let Some(target) = &target {
        ensure_may_reach(socket, app, &user, target, rule.store.is_some()).await?;
    }
    let draft = match &rule.store {
        None => None,
        Some(store) => {
            let room = match store {
                StoreIn::Room(room) => room.clone(),
                StoreIn::Target => target
                    .map(|t| t.name)
                    .ok_or_else(|| ChatError::bad_request("this rule stores in its target room"))?,
            };
            grant_of(socket)?.ensure_room(&room)?;
            let text = MessageText::parse(layout::text(&rule.layout, &args)?, app.text_limit)?;
            let room_key = layout::key(&rule.layout, &args)?;
            let stored_room = match app.store.room(&room).await? {
                Some(known) => known,
                // A room named by a client is created on its first stored message: that costs
                // what a `join` costs.
                None => {
                    app.limits.check(Command::Join, &user.id)?;
                    app.open_room(&room).await?
                }
            };
            Some(Draft {
                room: stored_room,
                author: user,
                text,
                client_id: None,
                room_key,
            })
        }
    };
    Ok(Planned {
        args,
        receivers,
        draft,
    })
}

/// Whether the sender may relay to (and store in) a room its payload names. On `/` the rooms
/// are the chat's: only a member reaches one, as with `message`. On a namespace of rules rooms
/// are the sockets' own, as in Node, and anyone may relay to one; but stored messages are the
/// chat's history, so storing needs the sender's socket in the room (joined by a rule). A room
/// the rule itself names is the operator's choice, open to every sender.
async fn ensure_may_reach<A: Adapter>(
    socket: &SocketRef<A>,
    app: &AppState,
    user: &User,
    target: &TargetRoom,
    stores: bool,
) -> Result<(), ChatError> {
    if !target.named_by_client {
        return Ok(());
    }
    if socket.ns() == CHAT_NAMESPACE {
        member_room(app, socket, &target.name, user).await?;
    } else if stores && !socket.rooms().iter().any(|r| r == target.name.as_str()) {
        return Err(ChatError::forbidden(format!(
            "join room '{}' first: only its members store in it",
            target.name
        )));
    }
    Ok(())
}

/// Relays (after the commit, in commit order, when the rule stores) and answers `{ ok: true }`.
/// A rule that replays relays nothing here: its room's feed delivers what was stored, on every
/// node (feed.rs).
async fn announce<A: Adapter>(
    socket: &SocketRef<A>,
    rule: &Arc<Rule>,
    planned: Planned,
    app: &AppState,
) -> Result<Relayed, ChatError> {
    let Planned {
        args,
        receivers,
        draft,
    } = planned;
    let sender = socket.clone();
    let relay_rule = rule.clone();
    let emit = move |stored: Option<&Message>| {
        let args = layout::relayed(&relay_rule.layout, &args, stored);
        async move {
            if let Some(name) = relay_rule.emit.as_deref()
                && !receivers.is_nobody()
            {
                delivery::emit_named(|| receivers.select(&sender), name, RELAY, &args).await;
            }
            if echoes(&relay_rule) {
                echo(&sender, &relay_rule, &args);
            }
        }
    };
    match draft {
        None => {
            emit(None).await;
            Ok(Relayed { message: None })
        }
        Some(draft) => {
            let announce: Option<Announce<Appended>> = rule.replay.is_none().then(|| {
                let announce: Announce<Appended> =
                    Box::new(move |appended| Some(Box::pin(emit(Some(&appended.message)))));
                announce
            });
            let appended = app.append(draft, announce).await?;
            Ok(Relayed {
                message: Some(appended.message),
            })
        }
    }
}

/// Whether the sender gets what it relays: `echo`, or a rule to everyone.
fn echoes(rule: &Rule) -> bool {
    rule.echo || rule.to == Target::Everyone
}

/// Stores what the rule stores, first: a relay whose storage failed is answered with the
/// failure and goes nowhere.
async fn store(
    rule: &Rule,
    planned: Planned,
    app: &AppState,
) -> Result<(Args, Receivers), ChatError> {
    let stored = match planned.draft {
        Some(draft) => Some(app.append(draft, None).await?.message),
        None => None,
    };
    let args = layout::relayed(&rule.layout, &planned.args, stored.as_ref());
    Ok((args, planned.receivers))
}

/// Relays with an acknowledgement and collects the receivers' answers (those that answer
/// within the rule's timeout), as Node's broadcast with an ack does.
async fn pass_through<A: Adapter>(
    socket: &SocketRef<A>,
    rule: &Rule,
    args: &Args,
    receivers: &Receivers,
) -> Vec<rmpv::Value> {
    if echoes(rule) {
        echo(socket, rule, args);
    }
    let Some(name) = rule.emit.as_deref() else {
        return Vec::new();
    };
    if receivers.is_nobody() {
        return Vec::new();
    }
    let ask = |to: BroadcastOperators<A>| {
        to.timeout(rule.ack_timeout)
            .emit_with_ack::<_, rmpv::Value>(name, args)
    };
    let sent = match ask(receivers.select(socket)).await {
        // The other nodes are out of reach: this node's receivers still answer.
        Err(EmitWithAckError::Adapter(err)) => {
            metrics::counter!(names::FANOUT_FALLBACKS, "event" => RELAY).increment(1);
            tracing::debug!(sid = %socket.id, user = %user_label(socket), error = %err, event = name, "other nodes out of reach: relayed on this node only");
            ask(receivers.select(socket).local()).await
        }
        sent => sent,
    };
    match sent {
        Ok(stream) => {
            stream
                .filter_map(|(_, answer)| async move { answer.ok() })
                .collect()
                .await
        }
        Err(err) => {
            tracing::debug!(sid = %socket.id, user = %user_label(socket), error = %err, event = name, "relay with acknowledgement failed");
            Vec::new()
        }
    }
}

fn echo<A: Adapter>(socket: &SocketRef<A>, rule: &Rule, args: &Args) {
    let Some(name) = rule.emit.as_deref() else {
        return;
    };
    if let Err(err) = socket.emit(name, args) {
        tracing::debug!(sid = %socket.id, user = %user_label(socket), error = %err, "could not echo a relayed event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ErrorCode;
    use rmpv::Value;

    fn args(values: Vec<Value>) -> Args {
        Args::from_values(values)
    }

    fn named(to: &Target, values: Vec<Value>) -> Result<Option<(String, bool)>, ErrorCode> {
        TargetRoom::named(to, &args(values))
            .map(|t| t.map(|t| (t.name.as_str().to_owned(), t.named_by_client)))
            .map_err(|e| e.code)
    }

    #[test]
    fn a_rule_names_its_room_and_a_payload_names_the_client_s() {
        let lobby = RoomName::parse("lobby").ok();
        let to_lobby = Target::Room(lobby.clone().unwrap_or_else(|| unreachable!()));
        assert_eq!(named(&to_lobby, vec![]), Ok(Some(("lobby".into(), false))));
        assert_eq!(
            named(
                &Target::Argument,
                vec![Value::from("team-1"), Value::from(5)]
            ),
            Ok(Some(("team-1".into(), true)))
        );
        let by_field = Target::Field("room".into());
        let payload = Value::Map(vec![(Value::from("room"), Value::from("team-2"))]);
        assert_eq!(
            named(&by_field, vec![payload]),
            Ok(Some(("team-2".into(), true)))
        );
        assert_eq!(named(&Target::Others, vec![]), Ok(None));
        assert_eq!(named(&Target::SenderRooms, vec![]), Ok(None));
    }

    #[test]
    fn a_payload_without_a_valid_room_is_refused() {
        assert_eq!(named(&Target::Argument, vec![]), Err(ErrorCode::BadRequest));
        assert_eq!(
            named(&Target::Argument, vec![Value::from(7)]),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            named(&Target::Argument, vec![Value::from("two words")]),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            named(&Target::Argument, vec![Value::from("user:bob")]).err(),
            Some(ErrorCode::Forbidden)
        );
        let by_field = Target::Field("room".into());
        let payload = Value::Map(vec![(Value::from("other"), Value::from("x"))]);
        assert_eq!(named(&by_field, vec![payload]), Err(ErrorCode::BadRequest));
    }
}
