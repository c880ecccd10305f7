//! Manual lifecycle for frameworks that run the call themselves: start and end events only,
//! through the sanitize chains. Handles are not pushed on the stack, because frameworks with
//! callback hooks interleave the starts and ends of concurrent calls.

use std::sync::Arc;

use serde_json::Value;

use crate::call::{category_profile, check_name, intern, validate_llm_request, CallOptions, LlmOptions, ToolOptions};
use crate::error::{Error, Result};
use crate::event::{Attributes, Payload};
use crate::middleware::{CallInfo, CallKind};
use crate::reentry;
use crate::runtime::Status;
use crate::scope::{EndOptions, ScopeNode};
use crate::stack::Stack;

/// A tool or LLM call started with [`Stack::tool_start`] / [`Stack::llm_start`].
#[derive(Clone)]
pub struct CallHandle {
    stack: Stack,
    node: Arc<ScopeNode>,
    info: CallInfo,
}

impl std::fmt::Debug for CallHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallHandle").field("uuid", &self.node.uuid).field("name", &self.node.name).finish()
    }
}

impl CallHandle {
    pub fn uuid(&self) -> crate::id::Uuid {
        self.node.uuid
    }

    /// Ends the call: `options.output` is the result/response (sanitized for the event),
    /// `options.error` ends it with `ERROR` status. `not_found` if it already ended.
    pub fn end(&self, options: EndOptions) -> Result<()> {
        let rt = &self.stack.runtime().0;
        rt.check_open()?;
        reentry::check_can_emit()?;
        let EndOptions { output, metadata, error } = options;
        let family = self.info.kind.sanitize_response();
        let ended = match &error {
            Some(e) => rt.end_scope(&self.node, Status::Error(e), || Payload::NULL, metadata),
            None => rt.end_scope(
                &self.node,
                Status::Ok,
                || rt.event_payload(family, Some(&self.node), &self.info, &output.unwrap_or(Value::Null)),
                metadata,
            ),
        };
        if !ended {
            return Err(Error::not_found(format!(
                "{} call '{}' ({}) has already ended",
                self.info.kind.label(),
                self.node.name,
                self.node.uuid
            )));
        }
        Ok(())
    }
}

impl CallKind {
    fn label(self) -> &'static str {
        match self {
            CallKind::Tool => "tool",
            CallKind::Llm => "LLM",
        }
    }
}

impl Stack {
    fn manual_start(&self, kind: CallKind, name: &str, payload: &Value, options: CallOptions) -> Result<CallHandle> {
        let rt = &self.runtime().0;
        rt.check_open()?;
        reentry::check_can_emit()?;
        check_name(name)?;
        let parent = self.open_parent(options.parent.as_ref())?;
        let mut info = CallInfo::new(kind, intern(name), options.tool_call_id, options.model_name, parent.uuid());
        let node = ScopeNode::new(
            info.name.clone(),
            kind.category(),
            Attributes::new(&options.attributes),
            category_profile(&info),
            &parent,
            options.metadata,
        );
        info.uuid = Some(node.uuid);
        rt.emit_start(&node, || rt.event_payload(kind.sanitize_request(), Some(&node), &info, payload), None);
        Ok(CallHandle { stack: self.clone(), node, info })
    }

    /// Emits a tool start without running the tool; end it with [`CallHandle::end`].
    pub fn tool_start(&self, name: &str, args: &Value, options: ToolOptions) -> Result<CallHandle> {
        self.manual_start(CallKind::Tool, name, args, options.into())
    }

    /// Emits an LLM start without calling the model; end it with [`CallHandle::end`].
    pub fn llm_start(&self, name: &str, request: &Value, options: LlmOptions) -> Result<CallHandle> {
        let mut request = request.clone();
        validate_llm_request(&mut request)?;
        self.manual_start(CallKind::Llm, name, &request, options.into())
    }
}
