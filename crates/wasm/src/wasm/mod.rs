//! The native layer the JS facade calls. Values cross as JSON text; errors cross as a plain
//! object `{__batonError: true, code, message, detail}` that the facade turns into a
//! `BatonError`, or as the very value a JS callback threw.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use baton::{
    CallKind, EndOptions, Error, ErrorKind, Family, MarkOptions, Middleware, Registration, Runtime, ScopeHandle, ScopeOptions, ToolOptions,
};
use js_sys::{Function, Object, Reflect};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

mod calls;
mod codecs;
mod deliver;
mod errors;
mod functions;
mod json;
mod manual;
mod middleware;
mod options;
mod platform;
mod plugins;
mod runtime;
mod scopes;
mod stacks;
mod standalone;
mod streams;
mod tasks;

use calls::*;
use deliver::*;
use errors::*;
use functions::*;
use json::*;
use middleware::*;
use options::*;
use runtime::*;
use stacks::*;
use streams::*;
use tasks::*;
