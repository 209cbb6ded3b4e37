"""Python half of libmlos_python_plugin.so (embedded in the plugin, run once per interpreter).

The C# half keeps the hot path (untyped inference) in the CPython C API; what is easier and
safer to say in Python lives here: importing the user's class with clear errors, turning return
values into statuses, formatting exceptions, and typed tensors as numpy arrays over caller memory.
"""
import importlib
import importlib.machinery
import os
import sys
import traceback
import weakref

# SMI statuses a Python plugin may return (smi_spec.h); anything else is a protocol error.
SMI_STATUSES = {0: "SMI_SUCCESS", -1: "SMI_ERROR_INVALID_PARAM", -2: "SMI_ERROR_OUT_OF_MEMORY",
                -3: "SMI_ERROR_NOT_FOUND", -4: "SMI_ERROR_NOT_SUPPORTED", -5: "SMI_ERROR_RUNTIME",
                -6: "SMI_ERROR_BUFFER_TOO_SMALL", -7: "SMI_ERROR_INVALID_STATE",
                -8: "SMI_ERROR_ALREADY_EXISTS", -9: "SMI_ERROR_VERSION_MISMATCH", -10: "SMI_ERROR_BUSY"}


class ProtocolError(TypeError):
    """The user's class answered outside the protocol (wrong type, unknown status)."""


def load_class(module_name, class_name, path):
    """Imports module_name (from path first, when given) and returns an instance of class_name,
    or (status, message) when the module or class is not there (SMI_ERROR_NOT_FOUND)."""
    if path:
        # With a path the class comes from there and nowhere else: a name that is only found on
        # the rest of sys.path (the standard library, site-packages) would run code the host's
        # operator never put in that folder.
        # A bare folder of that name would be a namespace package, which Python completes from the
        # rest of sys.path; and a parent package imported before decides where its submodules come
        # from: so the spec must have a file in the path, and so must the module once imported.
        top = module_name.partition(".")[0]
        spec = importlib.machinery.PathFinder.find_spec(top, [path])
        if spec is None or spec.origin is None or not _inside(spec.origin, path):
            return -3, f"Python module '{module_name}' not found in {path}"
        if path not in sys.path:
            sys.path.insert(0, path)
    # A fresh import on every initialize, so that a host re-initializing sees edited code.
    sys.modules.pop(module_name, None)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise  # the module exists but one of its own imports is missing: say which
        return -3, f"Python module '{module_name}' not found"
    if path and not _inside(getattr(module, "__file__", None) or "", path):
        return -3, f"Python module '{module_name}' not found in {path} (it resolved to {getattr(module, '__file__', None)})"
    cls = getattr(module, class_name, None)
    if cls is None:
        return -3, f"Python module '{module_name}' ({getattr(module, '__file__', '?')}) has no class '{class_name}'"
    if not isinstance(cls, type):
        return -1, f"'{module_name}.{class_name}' is a {type(cls).__name__}, not a class"
    return cls()


def _inside(file, folder):
    """Whether file lies in folder, links resolved on both sides."""
    real = os.path.realpath(folder)
    return os.path.realpath(file).startswith(real.rstrip(os.sep) + os.sep)


def status_of(method, result):
    """A method's answer as an SMI status: None means success, ints must be known statuses."""
    if result is None:
        return 0
    if isinstance(result, bool) or not isinstance(result, int):
        raise ProtocolError(f"{method}() returned {type(result).__name__}; expected an SMI status (int) or None")
    if result not in SMI_STATUSES:
        raise ProtocolError(f"{method}() returned status {result}, which is not an SMI status (0 to -10)")
    return result


def call_status(plugin, method, *args):
    """Calls an optional method and returns its SMI status; a missing method is success."""
    fn = getattr(plugin, method, None)
    if fn is None:
        return 0
    return status_of(method, fn(*args))


def inference_result(result):
    """Slow path of inference(): the C# side handles (bytes, 0) and bytes itself.

    Returns (payload, status) with payload a bytes-like object or None."""
    status = 0
    if isinstance(result, tuple):
        if len(result) != 2:
            raise ProtocolError(f"inference() returned a tuple of {len(result)}; expected (bytes, status)")
        result, status = result
        status = status_of("inference", status)
        if status != 0:
            return None, status
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), 0
    raise ProtocolError(f"inference() returned {type(result).__name__}; expected (bytes, status) or bytes")


def plugin_string(plugin, method, fallback):
    fn = getattr(plugin, method, None)
    if fn is None:
        return fallback
    value = fn()
    if not isinstance(value, str):
        raise ProtocolError(f"{method}() returned {type(value).__name__}; expected str")
    return value


def model_info(plugin, handle):
    """get_model_info(handle) as JSON text: a dict is serialised, a str is taken as JSON."""
    import json
    fn = getattr(plugin, "get_model_info", None)
    if fn is None:
        return None
    info = fn(handle)
    if isinstance(info, str):
        json.loads(info)  # must be JSON: raises with the position otherwise
        return info
    if isinstance(info, dict):
        return json.dumps(info)
    raise ProtocolError(f"get_model_info() returned {type(info).__name__}; expected dict or JSON str")


def describe(exc):
    """'Type: message' for the last-error text, with the innermost user frame when there is one.
    An exception that carries its own client-facing text (mlos_plain_message, e.g. a Triton
    model's error response) is that text alone."""
    if getattr(exc, "mlos_plain_message", False):
        return str(exc)
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if not f.filename.endswith("mlos_python_bridge.py") and not f.filename.startswith("<frozen")]
    if user and not isinstance(exc, ProtocolError):
        f = user[-1]
        text += f" (at {f.filename}:{f.lineno} in {f.name})"
    return text


# --- Typed tensors (SMI 1.1 infer) ------------------------------------------------------------
# smi_dtype_t codes <-> numpy dtype strings; BF16 and BYTES have no numpy counterpart here.
_DTYPES = {1: "|b1", 2: "|u1", 3: "<u2", 4: "<u4", 5: "<u8", 6: "|i1", 7: "<i2", 8: "<i4", 9: "<i8",
           10: "<f2", 11: "<f4", 12: "<f8"}
_CODES = {v: k for k, v in _DTYPES.items()}
_np = None


def _numpy():
    global _np
    if _np is None:
        import numpy
        _np = numpy
    return _np


class _CallerMemory:
    """Exposes caller memory to numpy through __array_interface__, read-only and without a copy.
    numpy keeps this object as the array's base, so a weak reference tells whether any array over
    the caller's memory outlived the call."""
    __slots__ = ("__array_interface__", "__weakref__")

    def __init__(self, address, typestr, shape):
        self.__array_interface__ = {"version": 3, "data": (address, True), "typestr": typestr, "shape": shape}


def _input_array(address, dtype, shape):
    np = _numpy()
    typestr = _DTYPES.get(dtype)
    if typestr is None:
        raise ProtocolError(f"SMI dtype {dtype} has no numpy equivalent in the Python bridge")
    if address == 0:  # an empty tensor may have no memory at all
        empty = np.empty(shape, dtype=typestr)
        empty.flags.writeable = False
        return empty, None
    memory = _CallerMemory(address, typestr, shape)
    return np.asarray(memory), weakref.ref(memory)


def infer(plugin, handle, inputs, output_names):
    """Calls plugin.infer(handle, {name: array}) with arrays over the caller's memory, and returns
    [(name, array, dtype, shape)] with C-contiguous arrays the bridge may hand to the caller;
    output_names names list answers (from get_model_io), else output_N."""
    fn = getattr(plugin, "infer", None)
    if fn is None:
        raise NotImplementedError(f"{type(plugin).__name__} has no infer(handle, inputs) method")
    np = _numpy()
    arrays, watches = {}, []
    for name, address, dtype, shape in inputs:
        arrays[name], watch = _input_array(address, dtype, shape)
        watches.append((name, watch))
    result = fn(handle, arrays)
    del arrays
    out = _outputs(np, result, output_names)
    del result
    for name, watch in watches:
        if watch is not None and watch() is not None:
            raise ProtocolError(f"infer() kept input '{name}' after returning; inputs are views of the caller's "
                                "memory for the call only: keep a copy (numpy.array(x)) instead")
    return out


def _outputs(np, result, output_names):
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int) and not isinstance(result[1], bool):
        result, status = result
        if status_of("infer", status) != 0:
            return status
    if isinstance(result, np.ndarray):
        items = [(None, result)]
    elif isinstance(result, dict):
        items = list(result.items())
    elif isinstance(result, (list, tuple)):
        items = [(None, a) for a in result]
    else:
        raise ProtocolError(f"infer() returned {type(result).__name__}; expected a dict of arrays, a list of arrays or an array")
    out = []
    for i, (name, a) in enumerate(items):
        if name is None:
            name = output_names[i] if i < len(output_names) else f"output_{i}"
        if not isinstance(name, str):
            raise ProtocolError(f"infer() output names must be str, not {type(name).__name__}")
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:
            a = a.copy()  # a view of an input (read-only caller memory) must not outlive the call
        code = _CODES.get(a.dtype.str)
        if code is None:
            raise ProtocolError(f"infer() output '{name}' has dtype {a.dtype}, which SMI cannot carry")
        out.append((name, a, code, tuple(a.shape)))
    return out


def model_io(plugin, handle):
    """get_model_io(handle) -> ([(name, dtype, shape)], [(name, dtype, shape)]) with SMI codes,
    from {"inputs": [{"name", "dtype" ("FP32" or numpy name), "shape"}], "outputs": [...]}."""
    fn = getattr(plugin, "get_model_io", None)
    if fn is None:
        return None
    io = fn(handle)
    if not isinstance(io, dict):
        raise ProtocolError(f"get_model_io() returned {type(io).__name__}; expected a dict with inputs and outputs")

    def specs(key):
        result = []
        for spec in io.get(key, []):
            name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
            result.append((str(name), _code_of(dtype), tuple(int(d) for d in shape)))
        return result
    return specs("inputs"), specs("outputs")


_KSERVE = {"BOOL": 1, "UINT8": 2, "UINT16": 3, "UINT32": 4, "UINT64": 5, "INT8": 6, "INT16": 7,
           "INT32": 8, "INT64": 9, "FP16": 10, "FP32": 11, "FP64": 12}


def _code_of(dtype):
    if isinstance(dtype, str) and dtype.upper() in _KSERVE:
        return _KSERVE[dtype.upper()]
    code = _CODES.get(_numpy().dtype(dtype).str)
    if code is None:
        raise ProtocolError(f"get_model_io(): dtype {dtype!r} cannot be carried by SMI")
    return code
