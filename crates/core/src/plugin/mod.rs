//! Plugins: behaviour packaged as components and installed from one document
//! (`plugins.toml`, DESIGN.md §2.6).
//!
//! The document is the reference's format, so an existing file works unchanged:
//!
//! ```toml
//! version = 1
//! [policy]                       # ignore | warn | error
//! unknown_component = "warn"
//! [[components]]
//! kind = "observability"
//! enabled = true
//! [components.config]
//! # component-specific
//! ```
//!
//! [`Runtime::plugin_validate`] is pure and returns diagnostics that name the component and
//! field. [`Runtime::plugin_initialize`] validates, tears down the previous configuration,
//! activates each enabled component in order and, if one fails, removes what it installed and
//! restores the previous configuration. Components are written in Rust ([`Component`]) or in
//! a host language (a binding wraps a host object as a [`Component`]).

pub mod observability;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::middleware::{Family, Middleware, Registration};
use crate::runtime::Runtime;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One finding about a plugins document.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub level: Level,
    /// A stable code: `invalid_document`, `unsupported_version`, `missing_field`,
    /// `invalid_type`, `invalid_value`, `unknown_field`, `unknown_component`,
    /// `unsupported_value`, `duplicate_component`.
    pub code: &'static str,
    pub component: Option<String>,
    /// The field's path, e.g. `components[0].config.atof.sinks[1].mode`.
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    /// `{level, code, component?, field?, message}`.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("level".into(), self.level.as_str().into());
        o.insert("code".into(), self.code.into());
        if let Some(c) = &self.component {
            o.insert("component".into(), c.clone().into());
        }
        if let Some(f) = &self.field {
            o.insert("field".into(), f.clone().into());
        }
        o.insert("message".into(), self.message.clone().into());
        Value::Object(o)
    }
}

/// What to do about a class of problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    Ignore,
    Warn,
    Error,
}

impl PolicyAction {
    fn parse(s: &str) -> Option<PolicyAction> {
        match s {
            "ignore" => Some(PolicyAction::Ignore),
            "warn" => Some(PolicyAction::Warn),
            "error" => Some(PolicyAction::Error),
            _ => None,
        }
    }
}

/// The document's `[policy]`; defaults match the reference (warn, warn, error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub unknown_component: PolicyAction,
    pub unknown_field: PolicyAction,
    pub unsupported_value: PolicyAction,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { unknown_component: PolicyAction::Warn, unknown_field: PolicyAction::Warn, unsupported_value: PolicyAction::Error }
    }
}

/// Collects the diagnostics of one document, applying its policy. Components receive one
/// scoped to their entry, so the fields they name are full paths.
pub struct Diagnostics {
    out: Vec<Diagnostic>,
    policy: Policy,
    component: Option<String>,
    prefix: String,
}

impl Diagnostics {
    fn new(policy: Policy) -> Diagnostics {
        Diagnostics { out: Vec::new(), policy, component: None, prefix: String::new() }
    }

    fn path(&self, field: &str) -> String {
        match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) if field.starts_with('[') => format!("{}{field}", self.prefix),
            (false, false) => format!("{}.{field}", self.prefix),
        }
    }

    fn push(&mut self, level: Level, code: &'static str, field: &str, message: impl Into<String>) {
        let field = self.path(field);
        self.out.push(Diagnostic {
            level,
            code,
            component: self.component.clone(),
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        });
    }

    fn by_policy(&mut self, action: PolicyAction, code: &'static str, field: &str, message: String) {
        match action {
            PolicyAction::Ignore => {}
            PolicyAction::Warn => self.push(Level::Warning, code, field, message),
            PolicyAction::Error => self.push(Level::Error, code, field, message),
        }
    }

    pub fn error(&mut self, code: &'static str, field: &str, message: impl Into<String>) {
        self.push(Level::Error, code, field, message);
    }
    pub fn warning(&mut self, code: &'static str, field: &str, message: impl Into<String>) {
        self.push(Level::Warning, code, field, message);
    }
    /// A field this component does not know (handled per `policy.unknown_field`).
    pub fn unknown_field(&mut self, field: &str) {
        let msg = format!("unknown field '{}'", field.rsplit('.').next().unwrap_or(field));
        self.by_policy(self.policy.unknown_field, "unknown_field", field, msg);
    }
    /// A value this build cannot honour (handled per `policy.unsupported_value`).
    pub fn unsupported_value(&mut self, field: &str, message: impl Into<String>) {
        self.by_policy(self.policy.unsupported_value, "unsupported_value", field, message.into());
    }

    /// Reports every key of `obj` not in `known` as an unknown field.
    pub fn check_keys(&mut self, obj: &Map<String, Value>, at: &str, known: &[&str]) {
        for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            let field = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            self.unknown_field(&field);
        }
    }

    /// Typed getters that report wrong types; `None` when absent (or wrong).
    pub fn get_bool(&mut self, obj: &Map<String, Value>, at: &str, key: &str) -> Option<bool> {
        self.get(obj, at, key, "a boolean", Value::as_bool)
    }
    pub fn get_str<'v>(&mut self, obj: &'v Map<String, Value>, at: &str, key: &str) -> Option<&'v str> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.error("invalid_type", &join(at, key), format!("expected a string, got {}", type_name(other)));
                None
            }
        }
    }
    pub fn get_u64(&mut self, obj: &Map<String, Value>, at: &str, key: &str) -> Option<u64> {
        self.get(obj, at, key, "a non-negative integer", Value::as_u64)
    }
    pub fn get_object<'v>(&mut self, obj: &'v Map<String, Value>, at: &str, key: &str) -> Option<&'v Map<String, Value>> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.error("invalid_type", &join(at, key), format!("expected a table/object, got {}", type_name(other)));
                None
            }
        }
    }
    pub fn get_array<'v>(&mut self, obj: &'v Map<String, Value>, at: &str, key: &str) -> Option<&'v Vec<Value>> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a),
            Some(other) => {
                self.error("invalid_type", &join(at, key), format!("expected an array, got {}", type_name(other)));
                None
            }
        }
    }
    fn get<T>(&mut self, obj: &Map<String, Value>, at: &str, key: &str, what: &str, f: impl Fn(&Value) -> Option<T>) -> Option<T> {
        let v = obj.get(key)?;
        if v.is_null() {
            return None;
        }
        let got = f(v);
        if got.is_none() {
            self.error("invalid_type", &join(at, key), format!("expected {what}, got {}", type_name(v)));
        }
        got
    }

    pub fn has_errors(&self) -> bool {
        self.out.iter().any(|d| d.level == Level::Error)
    }
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.out
    }
}

/// `a.b` (or `b` at the root).
pub fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// A JSON type name for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A component: validates its `config` and installs middleware and subscribers from it.
pub trait Component: Send + Sync {
    /// The `kind` that selects it in the document.
    fn kind(&self) -> &str;
    /// Checks `config` (an object); must be pure. Field paths are relative to `config`.
    fn validate(&self, config: &Value, diagnostics: &mut Diagnostics);
    /// Installs the component through `activation`; called only with a valid config.
    fn activate(&self, config: &Value, activation: &mut Activation<'_>) -> Result<()>;
}

/// What a component installs, recorded so it can be removed again.
pub struct Activation<'a> {
    runtime: &'a Runtime,
    kind: String,
    installed: Vec<(Family, String)>,
}

impl Activation<'_> {
    pub fn runtime(&self) -> &Runtime {
        self.runtime
    }
    /// Registers `middleware` globally as `<kind>.<name>`.
    pub fn register(&mut self, name: &str, priority: i32, middleware: Middleware) -> Result<()> {
        let full = format!("{}.{name}", self.kind);
        let family = middleware.family();
        self.runtime.register(Registration::new(full.clone()).priority(priority), middleware)?;
        self.installed.push((family, full));
        Ok(())
    }
}

/// What one component installed.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    pub kind: String,
    pub registrations: Vec<(Family, String)>,
}

/// The outcome of [`Runtime::plugin_initialize`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Report {
    /// Warnings (errors make initialization fail instead).
    pub diagnostics: Vec<Diagnostic>,
    pub components: Vec<Installed>,
}

impl Report {
    /// `{diagnostics: [...], components: [{kind, registrations: [{kind, name}]}]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "diagnostics": self.diagnostics.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
            "components": self.components.iter().map(|c| json!({
                "kind": c.kind,
                "registrations": c.registrations.iter().map(|(f, n)| json!({"kind": f.as_str(), "name": n})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The plugin state of one runtime.
pub(crate) struct PluginState {
    components: BTreeMap<String, Arc<dyn Component>>,
    active: Option<(Value, Vec<Installed>)>,
}

impl PluginState {
    pub fn new() -> PluginState {
        let mut components: BTreeMap<String, Arc<dyn Component>> = BTreeMap::new();
        let obs: Arc<dyn Component> = Arc::new(observability::Observability);
        components.insert(obs.kind().to_string(), obs);
        PluginState { components, active: None }
    }
}

pub(crate) type SharedPluginState = Mutex<PluginState>;

/// A component entry of a parsed document.
struct Entry<'a> {
    index: usize,
    kind: &'a str,
    enabled: bool,
    config: Value,
}

/// Validates the document and returns its enabled, known components.
fn check_document<'d>(doc: &'d Value, components: &BTreeMap<String, Arc<dyn Component>>) -> (Vec<Entry<'d>>, Vec<Diagnostic>) {
    let Some(root) = doc.as_object() else {
        let mut d = Diagnostics::new(Policy::default());
        d.error("invalid_document", "", format!("a plugins document is a table/object, got {}", type_name(doc)));
        return (Vec::new(), d.into_vec());
    };
    // The policy comes first: it decides how everything else is reported.
    let mut d = Diagnostics::new(Policy::default());
    let mut policy = Policy::default();
    if let Some(p) = d.get_object(root, "", "policy") {
        for (key, slot) in [
            ("unknown_component", &mut policy.unknown_component),
            ("unknown_field", &mut policy.unknown_field),
            ("unsupported_value", &mut policy.unsupported_value),
        ] {
            if let Some(s) = d.get_str(p, "policy", key) {
                match PolicyAction::parse(s) {
                    Some(a) => *slot = a,
                    None => d.error("invalid_value", &format!("policy.{key}"), format!("'{s}' is not one of ignore, warn, error")),
                }
            }
        }
        d.policy = policy;
        d.check_keys(p, "policy", &["unknown_component", "unknown_field", "unsupported_value"]);
    }
    d.policy = policy;
    d.check_keys(root, "", &["version", "components", "policy"]);
    match root.get("version") {
        None => d.error("missing_field", "version", "missing; this format is version = 1"),
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v) => d.error("unsupported_version", "version", format!("version {v} is not supported (expected 1)")),
    }
    let mut entries = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let components_list = d.get_array(root, "", "components");
    for (i, c) in components_list.into_iter().flatten().enumerate() {
        let at = format!("components[{i}]");
        let Some(obj) = c.as_object() else {
            d.error("invalid_type", &at, format!("expected a table/object, got {}", type_name(c)));
            continue;
        };
        d.check_keys(obj, &at, &["kind", "enabled", "config"]);
        let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
            match obj.get("kind") {
                None => d.error("missing_field", &format!("{at}.kind"), "missing; every component needs a kind"),
                Some(v) => d.error("invalid_type", &format!("{at}.kind"), format!("expected a string, got {}", type_name(v))),
            }
            continue;
        };
        let enabled = d.get_bool(obj, &at, "enabled").unwrap_or(true);
        let config = match obj.get("config") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(v) => {
                d.error("invalid_type", &format!("{at}.config"), format!("expected a table/object, got {}", type_name(v)));
                continue;
            }
        };
        let Some(component) = components.get(kind) else {
            let known = components.keys().cloned().collect::<Vec<_>>().join(", ");
            d.by_policy(
                policy.unknown_component,
                "unknown_component",
                &format!("{at}.kind"),
                format!("unknown component kind '{kind}' (known: {known})"),
            );
            continue;
        };
        if let Some(first) = seen.insert(kind, i) {
            d.error(
                "duplicate_component",
                &format!("{at}.kind"),
                format!("component '{kind}' is already configured at components[{first}]"),
            );
            continue;
        }
        let mut cd = Diagnostics { out: Vec::new(), policy, component: Some(kind.to_string()), prefix: format!("{at}.config") };
        component.validate(&config, &mut cd);
        d.out.extend(cd.into_vec());
        entries.push(Entry { index: i, kind, enabled, config });
    }
    (entries, d.into_vec())
}

impl Runtime {
    /// Makes a component kind available to plugin documents. `already_exists` if taken.
    pub fn register_component(&self, component: Arc<dyn Component>) -> Result<()> {
        let mut st = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        let kind = component.kind().to_string();
        if st.components.contains_key(&kind) {
            return Err(Error::already_exists(format!("component kind '{kind}' is already registered")));
        }
        st.components.insert(kind, component);
        Ok(())
    }

    /// Checks a plugins document (as JSON); pure: nothing is installed.
    pub fn plugin_validate(&self, document: &Value) -> Vec<Diagnostic> {
        let st = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        check_document(document, &st.components).1
    }

    /// Validates `document`, replaces the active configuration with it, and reports what was
    /// installed. On an error diagnostic nothing changes (`invalid_argument`, with the
    /// diagnostics as the error's detail); if a component fails to activate, everything this
    /// call installed is removed and the previous configuration is restored.
    pub fn plugin_initialize(&self, document: &Value) -> Result<Report> {
        self.0.check_open()?;
        let mut st = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        let (entries, diagnostics) = check_document(document, &st.components);
        if let Some(first) = diagnostics.iter().find(|d| d.level == Level::Error) {
            let count = diagnostics.iter().filter(|d| d.level == Level::Error).count();
            return Err(Error::invalid_argument(format!(
                "plugins document is invalid ({count} error{}): {}: {}",
                if count == 1 { "" } else { "s" },
                first.field.as_deref().unwrap_or("document"),
                first.message
            ))
            .with_detail(Value::Array(diagnostics.iter().map(Diagnostic::to_json).collect())));
        }
        let previous = st.active.take();
        if let Some((_, installed)) = &previous {
            self.uninstall(installed);
        }
        match self.activate_all(&st.components, &entries) {
            Ok(components) => {
                st.active = Some((document.clone(), components.clone()));
                Ok(Report { diagnostics, components })
            }
            Err(e) => {
                if let Some((doc, _)) = previous {
                    let (prev_entries, _) = check_document(&doc, &st.components);
                    if let Ok(restored) = self.activate_all(&st.components, &prev_entries) {
                        st.active = Some((doc.clone(), restored));
                    }
                }
                Err(e)
            }
        }
    }

    /// Removes everything the active plugin configuration installed.
    pub fn plugin_clear(&self) -> Result<()> {
        self.0.check_open()?;
        let mut st = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, installed)) = st.active.take() {
            self.uninstall(&installed);
        }
        Ok(())
    }

    fn activate_all(&self, components: &BTreeMap<String, Arc<dyn Component>>, entries: &[Entry<'_>]) -> Result<Vec<Installed>> {
        let mut done: Vec<Installed> = Vec::new();
        for e in entries.iter().filter(|e| e.enabled) {
            let component = &components[e.kind];
            let mut act = Activation { runtime: self, kind: e.kind.to_string(), installed: Vec::new() };
            let outcome = crate::exec::guard_public(|| component.activate(&e.config, &mut act));
            let installed = Installed { kind: e.kind.to_string(), registrations: act.installed };
            if let Err(err) = outcome {
                self.uninstall(&done);
                self.uninstall(std::slice::from_ref(&installed));
                return Err(Error::new(err.kind(), format!("components[{}] ({}) failed to activate: {}", e.index, e.kind, err.message())));
            }
            done.push(installed);
        }
        Ok(done)
    }

    fn uninstall(&self, installed: &[Installed]) {
        for c in installed {
            for (family, name) in &c.registrations {
                let _ = self.deregister(*family, name, None);
            }
        }
    }
}

/// Reads a plugins document: TOML, or JSON when the file is `.json` or starts with `{`.
pub fn load_document(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::invalid_argument(format!("plugins file '{}': {e}", path.display())))?;
    let json = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("json")) || text.trim_start().starts_with('{');
    parse_document(&text, json).map_err(|e| Error::invalid_argument(format!("plugins file '{}': {}", path.display(), e.message())))
}

/// Parses a plugins document from TOML or JSON text.
pub fn parse_document(text: &str, json: bool) -> Result<Value> {
    if json {
        return serde_json::from_str(text).map_err(|e| Error::invalid_argument(format!("invalid JSON: {e}")));
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::invalid_argument(format!("invalid TOML: {e}")))?;
    serde_json::to_value(table).map_err(|e| Error::invalid_argument(format!("TOML value not representable as JSON: {e}")))
}

/// Where the plugins document is: `explicit` if given, else `$XDG_CONFIG_HOME/baton/plugins.toml`
/// (or `~/.config/baton/plugins.toml` when XDG_CONFIG_HOME is unset), if that file exists.
pub fn discover(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    let candidate = base.join("baton").join("plugins.toml");
    candidate.is_file().then_some(candidate)
}
