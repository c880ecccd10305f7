//! The functions the addon exports (the facade in `node/` is their only caller).

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use baton::codec::{self, Codec, CodecKind};
use baton::{
    CallKind, ChunkStream, Data, DataSchema, EndOptions, Error, Family, LlmOptions, LlmStream, MarkOptions, OverflowPolicy, Registration,
    Runtime, RuntimeConfig, ScopeOptions, Stack, ToolOptions,
};
use futures_core::Stream;
use napi::sys;
use serde_json::Value;

use crate::callbacks::{self, guarded, JsFn};
use crate::convert::{self, opt_json, opt_object, opt_strings};
use crate::entered;
use crate::handles::{self, Handle};
use crate::js::{self, Env, JsRef, JsResult, JsVal};
use crate::stream::JsChunks;
use crate::task::{self, with_js_stack, AssertSend, Finish, PromiseFuture, TaskFuture};

mod calls;
mod codecs;
mod delivery;
mod enter;
mod manual;
mod middleware;
mod options;
mod plugins;
mod runtime;
mod scopes;
mod stacks;
mod standalone;
mod streams;

pub(crate) use calls::*;
pub(crate) use codecs::*;
pub(crate) use delivery::*;
pub(crate) use enter::*;
pub(crate) use manual::*;
pub(crate) use middleware::*;
use options::*;
pub(crate) use plugins::*;
pub(crate) use runtime::*;
pub(crate) use scopes::*;
pub(crate) use stacks::*;
pub(crate) use standalone::*;
pub(crate) use streams::*;
