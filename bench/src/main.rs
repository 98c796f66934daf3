//! `chatoxide-load`: drives a Socket.IO chat server (chatoxide or the Node baseline, which speak
//! the same events) and prints one JSON line of results per run.

mod durable;
mod fanout;
mod floor;
mod history;
mod idle;
mod joinstorm;
mod reconnect;
mod report;
mod server;
mod source_ports;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load tool of chatoxide's benchmarks")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Acknowledged `message` commands: throughput (closed loop) or latency at a fixed rate.
    Durable(durable::Args),
    /// Idle connections held open: server memory per connection.
    Idle(idle::Args),
    /// One room, many receivers, stepped send rates: delivery latency, loss and server CPU per
    /// delivery; over one node or a cluster.
    Fanout(fanout::Args),
    /// Many sockets join one room at the same moment: time to the last answer, failures,
    /// server CPU, and the next message delivered exactly once to every joiner.
    Joinstorm(joinstorm::Args),
    /// Clients in a room while the server is killed and started again: how long until every
    /// one is back (socket.io-client's reconnection delays), and in its room.
    Reconnect(reconnect::Args),
    /// No server: one small WebSocket frame written to each of many receivers over loopback, at
    /// stepped rates: the sender's CPU per send, the floor of a server's CPU per delivery.
    Floor(floor::Args),
    /// The receivers of `floor`, which starts them.
    #[command(hide = true)]
    FloorReceivers(floor::ReceiverArgs),
    /// Seeds a room with many messages straight into the database, then times history pages.
    History(history::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Durable(args) => durable::run(args).await,
        Scenario::History(args) => history::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Floor(args) => floor::run(args).await,
        Scenario::FloorReceivers(args) => floor::receivers(args).await,
        Scenario::Idle(args) => idle::run(args).await,
        Scenario::Joinstorm(args) => joinstorm::run(args).await,
        Scenario::Reconnect(args) => reconnect::run(args).await,
    }
}
