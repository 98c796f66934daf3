//! The contract's commands on a socket: one handler for every [`Command`], dispatched by name,
//! each served the same way (decoded, limited, run within the deadline, answered, counted).

use super::protocol::{self, decode};
use super::reply::Reply;
use crate::chat::ChatError;
use crate::state::AppState;
use crate::wire::Command;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, State, TryData};

/// A command's argument, which knows its command and how to run it.
pub(super) trait Handler<A: Adapter>: DeserializeOwned + Send + 'static {
    const COMMAND: Command;
    /// The `...result` of its `{ ok: true, ...result }`.
    type Answer: Serialize + Send;

    fn run(
        self,
        socket: &SocketRef<A>,
        app: &AppState,
    ) -> impl Future<Output = Result<Self::Answer, ChatError>> + Send;
}

/// Serves every command from one handler on the socket, the fallback socketioxide calls for an
/// event without a handler of its own: one boxed handler per socket instead of a map of ten
/// (≈ 650 B per socket, issue 19). The match is exhaustive: a new command does not build until it
/// has a handler. An event that names no command is answered `bad_request`.
pub(super) fn wire<A: Adapter>(socket: &SocketRef<A>) {
    socket.on_fallback(dispatch::<A>);
}

async fn dispatch<A: Adapter>(
    socket: SocketRef<A>,
    Event(name): Event,
    TryData(arg): TryData<Value>,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    let Some(command) = Command::named(&name) else {
        let unknown = Err(ChatError::bad_request(format!("unknown command '{name}'")));
        return reply.send::<()>(UNKNOWN, unknown);
    };
    match command {
        Command::Join => serve::<A, protocol::Join>(socket, arg, app, reply).await,
        Command::Leave => serve::<A, protocol::Leave>(socket, arg, app, reply).await,
        Command::Message => serve::<A, protocol::Send>(socket, arg, app, reply).await,
        Command::Typing => serve::<A, protocol::Typing>(socket, arg, app, reply).await,
        Command::History => serve::<A, protocol::History>(socket, arg, app, reply).await,
        Command::Read => serve::<A, protocol::Read>(socket, arg, app, reply).await,
        Command::Presence => serve::<A, protocol::Presence>(socket, arg, app, reply).await,
        Command::Members => serve::<A, protocol::MemberList>(socket, arg, app, reply).await,
        Command::Edit => serve::<A, protocol::Edit>(socket, arg, app, reply).await,
        Command::Delete => serve::<A, protocol::Delete>(socket, arg, app, reply).await,
    }
}

/// The label of events no command serves, in the command metrics.
pub(super) const UNKNOWN: &str = "unknown";

async fn serve<A: Adapter, C: Handler<A>>(
    socket: SocketRef<A>,
    arg: Result<Value, impl std::fmt::Display>,
    app: AppState,
    reply: Reply<A>,
) {
    let run = async {
        let command: C = decode(arg)?;
        command.run(&socket, &app).await
    };
    reply.serve(&app, C::COMMAND.name(), C::COMMAND, run).await;
}
