//! The contract's commands on a socket: one handler per [`Command`], wired by walking the enum,
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
use socketioxide::extract::{SocketRef, State, TryData};

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

/// Puts a handler for every command on the socket. The match is exhaustive: a new command does
/// not build until it has one.
pub(super) fn wire<A: Adapter>(socket: &SocketRef<A>) {
    for command in Command::ALL {
        match command {
            Command::Join => on::<A, protocol::Join>(socket),
            Command::Leave => on::<A, protocol::Leave>(socket),
            Command::Message => on::<A, protocol::Send>(socket),
            Command::Typing => on::<A, protocol::Typing>(socket),
            Command::History => on::<A, protocol::History>(socket),
            Command::Read => on::<A, protocol::Read>(socket),
            Command::Presence => on::<A, protocol::Presence>(socket),
            Command::Members => on::<A, protocol::MemberList>(socket),
            Command::Edit => on::<A, protocol::Edit>(socket),
            Command::Delete => on::<A, protocol::Delete>(socket),
        }
    }
}

fn on<A: Adapter, C: Handler<A>>(socket: &SocketRef<A>) {
    socket.on(C::COMMAND.name(), serve::<A, C>);
}

async fn serve<A: Adapter, C: Handler<A>>(
    socket: SocketRef<A>,
    TryData(arg): TryData<Value>,
    State(app): State<AppState>,
    reply: Reply<A>,
) {
    let run = async {
        let command: C = decode(arg)?;
        command.run(&socket, &app).await
    };
    reply.serve(&app, C::COMMAND.name(), C::COMMAND, run).await;
}
