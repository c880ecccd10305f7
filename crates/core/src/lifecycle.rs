//! Manual lifecycle for frameworks that run the call themselves: start and end events only,
//! through the sanitize chains. Handles are not pushed on the stack, because frameworks with
//! callback hooks interleave the starts and ends of concurrent calls.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::call::{validate_llm_request, LlmOptions, ToolOptions};
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
        let family = self.info.kind.sanitize_response_family();
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
    fn sanitize_response_family(self) -> crate::middleware::Family {
        match self {
            CallKind::Tool => crate::middleware::Family::ToolSanitizeResponse,
            CallKind::Llm => crate::middleware::Family::LlmSanitizeResponse,
        }
    }
    fn label(self) -> &'static str {
        match self {
            CallKind::Tool => "tool",
            CallKind::Llm => "LLM",
        }
    }
}

impl Stack {
    fn manual_start(
        &self,
        kind: CallKind,
        name: &str,
        payload: &Value,
        profile: Option<Value>,
        info: CallInfo,
        metadata: Map<String, Value>,
        attributes: &[String],
        parent: Option<&crate::scope::ScopeHandle>,
    ) -> Result<CallHandle> {
        let rt = &self.runtime().0;
        rt.check_open()?;
        reentry::check_can_emit()?;
        if name.is_empty() {
            return Err(Error::invalid_argument("name: a call needs a non-empty name"));
        }
        let parent = self.parent_of(parent);
        let node = ScopeNode::new(name.into(), kind.category(), Attributes::new(attributes), profile, &parent, metadata);
        let info = CallInfo { parent_uuid: parent.uuid(), uuid: Some(node.uuid), ..info };
        let family = match kind {
            CallKind::Tool => crate::middleware::Family::ToolSanitizeRequest,
            CallKind::Llm => crate::middleware::Family::LlmSanitizeRequest,
        };
        rt.emit_start(&node, || rt.event_payload(family, Some(&node), &info, payload), None);
        Ok(CallHandle { stack: self.clone(), node, info })
    }

    /// Emits a tool start without running the tool; end it with [`CallHandle::end`].
    pub fn tool_start(&self, name: &str, args: &Value, options: ToolOptions) -> Result<CallHandle> {
        let profile = options.tool_call_id.as_ref().map(|id| json!({"tool_call_id": id}));
        let info = CallInfo {
            kind: CallKind::Tool,
            name: name.into(),
            tool_call_id: options.tool_call_id.clone(),
            model_name: None,
            parent_uuid: None,
            uuid: None,
        };
        self.manual_start(CallKind::Tool, name, args, profile, info, options.metadata, &options.attributes, options.parent.as_ref())
    }

    /// Emits an LLM start without calling the model; end it with [`CallHandle::end`].
    pub fn llm_start(&self, name: &str, request: &Value, options: LlmOptions) -> Result<CallHandle> {
        let mut request = request.clone();
        validate_llm_request(&mut request)?;
        let profile = options.model_name.as_ref().map(|m| json!({"model_name": m}));
        let info = CallInfo {
            kind: CallKind::Llm,
            name: name.into(),
            tool_call_id: None,
            model_name: options.model_name.clone(),
            parent_uuid: None,
            uuid: None,
        };
        self.manual_start(CallKind::Llm, name, &request, profile, info, options.metadata, &options.attributes, options.parent.as_ref())
    }
}
