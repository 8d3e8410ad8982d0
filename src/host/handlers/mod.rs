//! One handler per command, behind this one small dispatch. Each handler
//! answers its command's token exactly once: at once, or later from the end
//! of a turn or a task (the ledger in `pending` makes a second answer
//! impossible). A new command is a variant in `protocol::command` and a
//! function in the file of its area here.
//!
//! - `turns`: prompt, follow_up, steer, abort.
//! - `model`: set_model, with checks that may wait for an extension.
//! - `session`: new_session, set_permission_mode, set_thinking_level,
//!   permission_response,
//!   list_sessions, delete_session.
//! - `fork`: fork, switch_session.
//! - `portable`: export_session, import_session.
//! - `compaction`: compact, set_auto_compaction.
//! - `budget`: set_budget.
//! - `sandbox`: set_sandbox.
//! - `state`: get_state, get_session_stats, get_messages,
//!   get_available_models; get_commands (here: one line).

mod budget;
mod compaction;
mod fork;
mod model;
mod portable;
mod sandbox;
mod session;
mod state;
mod turns;

use super::pending::Token;
use super::Host;
use crate::protocol::{Command, CommandsResponse, Empty, Response};

impl Host {
    pub(super) async fn dispatch(&mut self, token: Token, command: Command) {
        match command {
            Command::Prompt(params) => self.prompt(token, params).await,
            Command::FollowUp(params) => self.follow_up(token, params).await,
            Command::Steer(params) => self.steer(token, params.message).await,
            Command::Abort => self.abort(token).await,
            Command::SetModel(params) => self.set_model(token, params.model).await,
            Command::PermissionResponse(params) => self.permission_response(token, params).await,
            Command::SetPermissionMode(params) => {
                self.set_permission_mode(token, params.mode).await
            }
            Command::SetThinkingLevel(params) => self.set_thinking_level(token, params.level).await,
            Command::SetBudget(params) => self.set_budget(token, params).await,
            Command::SetSandbox(params) => self.set_sandbox(token, params).await,
            Command::GetState => {
                let state = self.state();
                self.respond(token, state).await
            }
            Command::GetSessionStats => {
                let stats = self.session_stats();
                self.respond(token, stats).await
            }
            Command::GetMessages(params) => {
                let messages = self.messages(params.all);
                self.respond(token, messages).await
            }
            Command::GetAvailableModels => self.available_models(token),
            Command::NewSession => self.new_session(token).await,
            Command::ListSessions => self.list_sessions(token),
            Command::DeleteSession(params) => self.delete_session(token, params.session_id).await,
            Command::Fork(params) => self.fork(token, params.message_index).await,
            Command::SwitchSession(params) => self.switch_session(token, params.session_id).await,
            Command::ExportSession(params) => self.export_session(token, params.session_id),
            Command::ImportSession(params) => self.import_session(token, params).await,
            Command::Compact(params) => self.compact(token, params).await,
            Command::SetAutoCompaction(params) => {
                self.set_auto_compaction(token, params.enabled).await
            }
            Command::GetCommands => {
                let commands = Response::GetCommands(CommandsResponse {
                    commands: self.commands.entries(),
                });
                self.respond(token, commands).await
            }
            Command::Shutdown => {
                self.respond(token, Response::Empty(Empty {})).await;
                self.begin_exit();
            }
        }
    }
}
