//! Awaitables written against the C API, for the two asyncio paths where every chunk or
//! every middleware step goes through one: a host-run stream's `async for`
//! ([`crate::stream`]) and the driver of a core future ([`crate::bridge`]).
//!
//! A `#[pyclass]` awaitable hands each result back as `StopIteration(value)`, an exception
//! object built per step. A type with the `am_send` slot (CPython ≥ 3.10) returns the result
//! directly to `await` and drives the awaitable below it with `PyIter_Send`, as a coroutine's
//! own `await` does: no exception object, no Python frame in between. `PyIter_Send` is not
//! in the 3.9 limited API this module is compiled against, so it is looked up at run time;
//! without it (CPython 3.9) these types are not created and the callers keep their Python
//! paths (`baton._bridge`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

/// `PyIter_Send`'s outcome codes.
pub const PYGEN_RETURN: c_int = 0;
pub const PYGEN_ERROR: c_int = -1;
pub const PYGEN_NEXT: c_int = 1;

type SendFn = unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, *mut *mut ffi::PyObject) -> c_int;

/// `Py_am_send` (3.10+).
const PY_AM_SEND: c_int = 81;
/// `Py_TPFLAGS_DISALLOW_INSTANTIATION` (3.10+).
const DISALLOW_INSTANTIATION: std::os::raw::c_ulong = 1 << 7;

static SEND: OnceLock<Option<SendFn>> = OnceLock::new();

/// Off: the Python paths of `baton._bridge` are used even where these types could be (the
/// tests run the asyncio paths both ways).
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// True when the native awaitables may be used for new calls and streams.
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns the native awaitables on or off for calls and streams started afterwards (tests).
#[pyfunction]
#[pyo3(name = "_set_native_awaitables")]
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(unix)]
fn lookup(name: &CStr) -> *mut c_void {
    extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let default = -2isize as *mut c_void;
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    let default = std::ptr::null_mut();
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    unsafe { dlsym(default, name.as_ptr()) }
}

#[cfg(not(unix))]
fn lookup(_name: &CStr) -> *mut c_void {
    std::ptr::null_mut()
}

/// `PyIter_Send`, when this CPython has it (3.10+) and the symbol can be found.
pub fn send_fn(py: Python<'_>) -> Option<SendFn> {
    *SEND.get_or_init(|| {
        if py.version_info() < (3, 10) {
            return None;
        }
        let p = lookup(c"PyIter_Send");
        // SAFETY: the symbol has this signature in every CPython ≥ 3.10.
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, SendFn>(p) })
    })
}

/// Sends `arg` into the awaitable iterator `it` (`send`): `PYGEN_NEXT` with the value it
/// yields, `PYGEN_RETURN` with its result, or `PYGEN_ERROR` with the exception set.
///
/// # Safety
/// GIL held; `it` and `arg` are valid; `out` receives a new reference unless `PYGEN_ERROR`.
#[inline]
pub unsafe fn send(f: SendFn, it: *mut ffi::PyObject, arg: *mut ffi::PyObject, out: *mut *mut ffi::PyObject) -> c_int {
    unsafe { f(it, arg, out) }
}

/// Sets `StopIteration(value)` (the result of an awaitable) without building the exception
/// object when CPython need not (it fetches the value back as is). Steals `value`.
///
/// # Safety
/// GIL held; `value` is a valid owned reference.
pub unsafe fn set_stop_iteration(value: *mut ffi::PyObject) {
    unsafe {
        let stop = ffi::PyExc_StopIteration;
        if ffi::PyTuple_Check(value) != 0 || ffi::PyExceptionInstance_Check(value) != 0 {
            // A tuple would be taken as the constructor's arguments: build the instance.
            let args = ffi::PyTuple_Pack(1, value);
            ffi::Py_DecRef(value);
            if args.is_null() {
                return;
            }
            let exc = ffi::PyObject_CallObject(stop, args);
            ffi::Py_DecRef(args);
            if !exc.is_null() {
                ffi::PyErr_SetObject(stop, exc);
                ffi::Py_DecRef(exc);
            }
            return;
        }
        ffi::PyErr_SetObject(stop, value);
        ffi::Py_DecRef(value);
    }
}

/// Takes the value of a pending `StopIteration` (`None` without one). Returns `None` (the
/// exception still set) when the pending exception is something else.
///
/// # Safety
/// GIL held; an exception is set.
pub unsafe fn take_stop_iteration(py: Python<'_>) -> Option<Py<PyAny>> {
    unsafe {
        if ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) == 0 {
            return None;
        }
        let err = PyErr::fetch(py);
        let value = err.value(py).getattr(pyo3::intern!(py, "value")).map(Bound::unbind).unwrap_or_else(|_| py.None());
        Some(value)
    }
}

/// Slot functions of an awaitable type (each with the GIL held).
pub struct Slots {
    pub dealloc: unsafe extern "C" fn(*mut ffi::PyObject),
    pub iternext: unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject,
    pub am_send: unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, *mut *mut ffi::PyObject) -> c_int,
    pub am_aiter: Option<unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject>,
    pub am_anext: Option<unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject>,
    pub send: ffi::PyCFunction,
    pub throw: ffi::PyCFunction,
    pub close: ffi::PyCFunction,
    /// The objects it holds, for the cycle collector (it may sit in a cycle through the
    /// frames awaiting it).
    pub traverse: ffi::traverseproc,
    pub clear: ffi::inquiry,
}

unsafe extern "C" fn return_self(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        ffi::Py_IncRef(o);
        o
    }
}

/// Creates a heap type named `name` (`module.Name`) of `basicsize` bytes with the awaitable
/// protocol: `__await__` (itself), `__next__`, `send`, `throw`, `close`, and optionally
/// `__aiter__` / `__anext__`. Only with `PyIter_Send` available (3.10+).
pub fn make_type(py: Python<'_>, name: &'static CStr, basicsize: usize, s: Slots) -> PyResult<Py<PyAny>> {
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"send".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: s.send },
            ml_flags: ffi::METH_O,
            ml_doc: std::ptr::null(),
        },
        ffi::PyMethodDef {
            ml_name: c"throw".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: s.throw },
            ml_flags: ffi::METH_VARARGS,
            ml_doc: std::ptr::null(),
        },
        ffi::PyMethodDef {
            ml_name: c"close".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: s.close },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: std::ptr::null(),
        },
        ffi::PyMethodDef::zeroed(),
    ]));
    let mut slots = vec![
        ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: s.dealloc as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_iter, pfunc: return_self as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_iternext, pfunc: s.iternext as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_am_await, pfunc: return_self as *mut c_void },
        ffi::PyType_Slot { slot: PY_AM_SEND, pfunc: s.am_send as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: methods.as_mut_ptr() as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_traverse, pfunc: s.traverse as *mut c_void },
        ffi::PyType_Slot { slot: ffi::Py_tp_clear, pfunc: s.clear as *mut c_void },
    ];
    if let Some(f) = s.am_aiter {
        slots.push(ffi::PyType_Slot { slot: ffi::Py_am_aiter, pfunc: f as *mut c_void });
    }
    if let Some(f) = s.am_anext {
        slots.push(ffi::PyType_Slot { slot: ffi::Py_am_anext, pfunc: f as *mut c_void });
    }
    slots.push(ffi::PyType_Slot { slot: 0, pfunc: std::ptr::null_mut() });
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC | DISALLOW_INSTANTIATION) as std::os::raw::c_uint,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: a valid spec; the slots are copied, the method table is 'static.
    let tp = unsafe { ffi::PyType_FromSpec(&mut spec) };
    // SAFETY: a new reference or NULL with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, tp) }.map(Bound::unbind)
}

/// Allocates an instance of a type made by [`make_type`] (fields zeroed).
///
/// # Safety
/// GIL held; `tp` is such a type.
pub unsafe fn alloc(tp: &Py<PyAny>) -> *mut ffi::PyObject {
    unsafe { ffi::PyType_GenericAlloc(tp.as_ptr() as *mut ffi::PyTypeObject, 0) }
}

/// Visits the fields of an instance that hold references (`tp_traverse`).
///
/// # Safety
/// Called by the cycle collector with valid fields (each NULL or a live object).
pub unsafe fn visit(fields: &[*mut ffi::PyObject], visit: ffi::visitproc, arg: *mut c_void) -> c_int {
    for &f in fields {
        if !f.is_null() {
            let r = unsafe { visit(f, arg) };
            if r != 0 {
                return r;
            }
        }
    }
    0
}

/// Stops the cycle collector tracking an instance (the start of `tp_dealloc`).
///
/// # Safety
/// GIL held; `o` is an instance of a type made by [`make_type`].
pub unsafe fn untrack(o: *mut ffi::PyObject) {
    unsafe { ffi::PyObject_GC_UnTrack(o as *mut c_void) };
}

/// Frees an instance (the end of `tp_dealloc`, after its fields are released).
///
/// # Safety
/// GIL held; `o` is an instance of a heap type with no references left.
pub unsafe fn free(o: *mut ffi::PyObject) {
    unsafe {
        let tp = ffi::Py_TYPE(o);
        let f = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if !f.is_null() {
            let f: ffi::freefunc = std::mem::transmute::<*mut c_void, ffi::freefunc>(f);
            f(o as *mut c_void);
        }
        ffi::Py_DecRef(tp as *mut ffi::PyObject);
    }
}

/// Releases a field holding a reference (or NULL) and clears it.
///
/// # Safety
/// GIL held.
pub unsafe fn clear(field: &mut *mut ffi::PyObject) {
    unsafe {
        let p = std::mem::replace(field, std::ptr::null_mut());
        if !p.is_null() {
            ffi::Py_DecRef(p);
        }
    }
}

/// Calls `obj.name(*args)` (`throw`, `close` of the awaitable below); a new reference or
/// NULL with an exception set.
///
/// # Safety
/// GIL held; `args` is a tuple (or NULL for no arguments).
pub unsafe fn call_method(obj: *mut ffi::PyObject, name: &CStr, args: *mut ffi::PyObject) -> *mut ffi::PyObject {
    unsafe {
        let m = ffi::PyObject_GetAttrString(obj, name.as_ptr());
        if m.is_null() {
            return m;
        }
        let r = if args.is_null() {
            ffi::PyObject_CallObject(m, std::ptr::null_mut())
        } else {
            ffi::PyObject_Call(m, args, std::ptr::null_mut())
        };
        ffi::Py_DecRef(m);
        r
    }
}

/// Raises what `throw(*args)` was given (no awaitable below to throw it into).
///
/// # Safety
/// GIL held; `args` is a tuple.
pub unsafe fn raise_thrown(args: *mut ffi::PyObject) {
    unsafe {
        let n = ffi::PyTuple_Size(args);
        if n < 1 {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"throw expected at least 1 argument".as_ptr());
            return;
        }
        let typ = ffi::PyTuple_GetItem(args, 0);
        let val = if n > 1 { ffi::PyTuple_GetItem(args, 1) } else { std::ptr::null_mut() };
        if ffi::PyExceptionInstance_Check(typ) != 0 {
            ffi::PyErr_SetObject(ffi::Py_TYPE(typ) as *mut ffi::PyObject, typ);
        } else if ffi::PyExceptionClass_Check(typ) != 0 {
            let v = if val.is_null() { ffi::Py_None() } else { val };
            ffi::PyErr_SetObject(typ, v);
        } else {
            ffi::PyErr_SetString(ffi::PyExc_TypeError, c"exceptions must be classes or instances deriving from BaseException".as_ptr());
        }
    }
}

/// Runs `f` with the GIL (slot functions are called with it held), turning a panic
/// into `SystemError` and returning `on_panic`.
pub fn guard<T>(on_panic: T, f: impl FnOnce(Python<'_>) -> T) -> T {
    // `attach` (not assuming): pyo3 then knows the GIL is held, and releases references
    // at once.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Python::attach(f))) {
        Ok(v) => v,
        Err(_) => {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"panic in a Baton awaitable".as_ptr()) };
            on_panic
        }
    }
}

/// [`guard`] without telling pyo3 the GIL is held (no `PyGILState_Ensure` / `Release` round
/// trip), for the per-chunk slots: `f` must not drop a `Py<T>` on its normal path (pyo3
/// would defer that decref to its next attach; correct, only later).
pub fn guard_held<T>(on_panic: T, f: impl FnOnce(Python<'_>) -> T) -> T {
    // SAFETY: slot functions are called by CPython with the GIL held.
    let py = unsafe { Python::assume_attached() };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(py))) {
        Ok(v) => v,
        Err(_) => {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"panic in a Baton awaitable".as_ptr()) };
            on_panic
        }
    }
}

static COROUTINE_TYPE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
static AWAIT: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// True for a coroutine object (`async def` called): one pointer comparison once known.
pub fn is_coroutine(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    match COROUTINE_TYPE.get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(py.import("types")?.getattr("CoroutineType")?.unbind()) }) {
        // SAFETY: reading the type of a live object.
        Ok(t) => unsafe { ffi::Py_TYPE(obj.as_ptr()) as *mut ffi::PyObject == t.as_ptr() },
        Err(_) => false,
    }
}

/// What `await aw` iterates: a coroutine itself, else what `__await__` returns; anything
/// else (a generator-based coroutine, a non-awaitable) goes through
/// `baton._bridge._await(aw)`, so it is accepted or refused exactly as `await` would.
pub fn awaitable_iter<'py>(aw: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = aw.py();
    let coro =
        COROUTINE_TYPE.get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(py.import("types")?.getattr("CoroutineType")?.unbind()) })?;
    // SAFETY: GIL held; type pointers compared, slots read from a live type.
    unsafe {
        let tp = ffi::Py_TYPE(aw.as_ptr());
        if tp as *mut ffi::PyObject == coro.as_ptr() {
            return Ok(aw);
        }
        let f = ffi::PyType_GetSlot(tp, ffi::Py_am_await);
        if !f.is_null() {
            let f: ffi::unaryfunc = std::mem::transmute::<*mut c_void, ffi::unaryfunc>(f);
            let it = Bound::from_owned_ptr_or_err(py, f(aw.as_ptr()))?;
            if ffi::PyIter_Check(it.as_ptr()) != 0 && ffi::Py_TYPE(it.as_ptr()) as *mut ffi::PyObject != coro.as_ptr() {
                return Ok(it);
            }
        }
    }
    let wrap = AWAIT.get_or_try_init(py, || -> PyResult<Py<PyAny>> { Ok(py.import("baton._bridge")?.getattr("_await")?.unbind()) })?;
    wrap.bind(py).call1((aw,))
}
