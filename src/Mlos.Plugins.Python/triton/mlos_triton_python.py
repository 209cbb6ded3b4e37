"""Triton's Python backend on the MLOS Python bridge.

A Triton model repository's `backend: "python"` model is a `model.py` with a class
`TritonPythonModel` (initialize(args), execute(requests), finalize()) that imports
`triton_python_backend_utils`. The server loads the Python bridge with this module's
`TritonPythonBackend` as its class; each registered model (one per instance) gets its own
`TritonPythonModel`, and this module stands in for `triton_python_backend_utils` (Tensor,
InferenceRequest, InferenceResponse, TritonError and the config helpers), written from Triton's
documented interface. What it does not offer (decoupled response senders, BLS calls, DLPack,
GPU tensors) raises a clear error naming it.

Model config: the server passes the model's config.pbtxt as Triton's JSON in the model config
key "triton_model_config"; args["model_config"] is that JSON, as Triton's backend gives it.
"""
import importlib.util
import json
import os
import sys
import threading

import numpy

# --- triton_python_backend_utils ---------------------------------------------------------------

_TRITON_TO_NUMPY = {
    "TYPE_BOOL": numpy.bool_, "TYPE_UINT8": numpy.uint8, "TYPE_UINT16": numpy.uint16,
    "TYPE_UINT32": numpy.uint32, "TYPE_UINT64": numpy.uint64, "TYPE_INT8": numpy.int8,
    "TYPE_INT16": numpy.int16, "TYPE_INT32": numpy.int32, "TYPE_INT64": numpy.int64,
    "TYPE_FP16": numpy.float16, "TYPE_FP32": numpy.float32, "TYPE_FP64": numpy.float64,
    "TYPE_STRING": numpy.object_,
}


def triton_string_to_numpy(triton_type):
    """The numpy type of a config data_type ("TYPE_FP32" -> numpy.float32)."""
    try:
        return _TRITON_TO_NUMPY[triton_type]
    except KeyError:
        raise TritonModelException(f"unknown Triton data type {triton_type!r}") from None


def get_input_config_by_name(model_config, name):
    """The config's input entry called name (a dict), or None."""
    return next((t for t in model_config.get("input", []) if t.get("name") == name), None)


def get_output_config_by_name(model_config, name):
    """The config's output entry called name (a dict), or None."""
    return next((t for t in model_config.get("output", []) if t.get("name") == name), None)


class TritonModelException(Exception):
    """Raised by this module for a misuse of its API; the request fails with its message."""


class TritonError(Exception):
    """An error a model puts in an InferenceResponse (or raises): the request fails with its message alone."""
    mlos_plain_message = True
    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS, CANCELLED = range(8)

    def __init__(self, message, code=INTERNAL):
        super().__init__(message)
        self._message = message
        self._code = code

    def message(self):
        return self._message

    def code(self):
        return self._code


class Tensor:
    """A named array (host memory only)."""

    def __init__(self, name, array):
        if not isinstance(name, str):
            raise TritonModelException(f"a Tensor's name must be a str, not {type(name).__name__}")
        self._name = name
        self._array = numpy.asarray(array)

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array

    def is_cpu(self):
        return True

    def to_dlpack(self):
        raise TritonModelException("DLPack tensors are not offered by the MLOS Python bridge")

    @staticmethod
    def from_dlpack(name, capsule):
        raise TritonModelException("DLPack tensors are not offered by the MLOS Python bridge")


class InferenceRequest:
    """One request as execute() sees it: its inputs, and the outputs the client asked for."""

    def __init__(self, inputs, requested_output_names, request_id="", model_name="", model_version=-1):
        self._inputs = list(inputs)
        self._requested = list(requested_output_names)
        self._id = request_id

    def inputs(self):
        return self._inputs

    def requested_output_names(self):
        return self._requested

    def request_id(self):
        return self._id

    def correlation_id(self):
        return 0

    def flags(self):
        return 0

    def parameters(self):
        return "{}"

    def is_cancelled(self):
        return False

    def get_response_sender(self):
        raise TritonModelException("decoupled models (response senders) are not served by the MLOS Python bridge")

    def exec(self, *args, **kwargs):
        raise TritonModelException("business logic scripting (InferenceRequest.exec) is not offered by the MLOS Python bridge")

    async_exec = exec


class InferenceResponse:
    """What execute() returns for one request: output tensors, or an error."""

    def __init__(self, output_tensors=None, error=None, parameters=None):
        self._outputs = list(output_tensors or [])
        self._error = error

    def output_tensors(self):
        return self._outputs

    def has_error(self):
        return self._error is not None

    def error(self):
        return self._error


def get_input_tensor_by_name(request, name):
    return next((t for t in request.inputs() if t.name() == name), None)


def get_output_tensor_by_name(response, name):
    return next((t for t in response.output_tensors() if t.name() == name), None)


# model.py files import this module under Triton's name.
sys.modules.setdefault("triton_python_backend_utils", sys.modules[__name__])


# --- The bridge's class -------------------------------------------------------------------------

_KSERVE = {"TYPE_BOOL": "BOOL", "TYPE_UINT8": "UINT8", "TYPE_UINT16": "UINT16", "TYPE_UINT32": "UINT32",
           "TYPE_UINT64": "UINT64", "TYPE_INT8": "INT8", "TYPE_INT16": "INT16", "TYPE_INT32": "INT32",
           "TYPE_INT64": "INT64", "TYPE_FP16": "FP16", "TYPE_FP32": "FP32", "TYPE_FP64": "FP64"}


class _Model:
    """One registered instance: its config and, once loaded, its TritonPythonModel."""

    def __init__(self, name, version, path, config, index):
        self.name, self.version, self.path, self.config, self.index = name, version, path, config, index
        self.instance = None


class TritonPythonBackend:
    """Serves TritonPythonModel classes from model.py files through the bridge."""

    def __init__(self):
        self._models = {}
        self._lock = threading.Lock()
        self._loaded_files = 0

    def get_plugin_name(self):
        return "MLOS Triton Python backend"

    def get_plugin_version(self):
        return "1.0.0"

    def get_supported_frameworks(self):
        return "python"

    def register_model(self, handle, metadata):
        text = metadata.get("config") or "{}"
        config = json.loads(text).get("triton_model_config")
        if not isinstance(config, dict):
            return -1  # SMI_ERROR_INVALID_PARAM: the server always passes one
        path = metadata.get("path") or ""
        version = os.path.basename(os.path.dirname(path))
        name = metadata.get("name") or config.get("name", "")
        with self._lock:
            # Instances of one model version are registered one after another: each is numbered, as Triton names them.
            index = sum(1 for m in self._models.values() if m.name == name and m.version == version)
            self._models[handle] = _Model(name, version, path, config, index)
        return 0

    def unregister_model(self, handle):
        with self._lock:
            self._models.pop(handle, None)
        return 0

    def load_model(self, handle, path):
        model = self._models[handle]
        with self._lock:
            self._loaded_files += 1
            # A module name of its own per load: two models' (or two versions') model.py never share one.
            module_name = f"_mlos_triton_model_{self._loaded_files}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"{path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        # Registered like any import (dataclasses and pickle look classes up there), and with its
        # folder on the path while it runs, so that model.py can import modules beside it.
        sys.modules[module_name] = module
        folder = os.path.dirname(os.path.abspath(path))
        sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        finally:
            sys.path.remove(folder)
        cls = getattr(module, "TritonPythonModel", None)
        if not isinstance(cls, type):
            raise TritonModelException(f"{path} has no class TritonPythonModel")
        instance = cls()
        repository = os.path.dirname(os.path.dirname(path))
        args = {
            "model_config": json.dumps(model.config),
            "model_instance_kind": "CPU",
            "model_instance_name": f"{model.name}_{model.index}",
            "model_instance_device_id": "0",
            "model_repository": repository,
            "model_version": model.version,
            "model_name": model.name,
        }
        if hasattr(instance, "initialize"):
            instance.initialize(args)
        model.instance = instance
        return 0

    def unload_model(self, handle):
        model = self._models.get(handle)
        if model is not None and model.instance is not None:
            instance, model.instance = model.instance, None
            if hasattr(instance, "finalize"):
                # Triton unloads a model whatever its finalize() does: a failure is reported, not kept.
                try:
                    instance.finalize()
                except Exception as e:  # noqa: BLE001 - any failure of the model's own code
                    print(f"mlos_triton_python: model '{model.name}' finalize() failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 0

    def get_model_io(self, handle):
        config = self._models[handle].config
        batch = [-1] if config.get("max_batch_size", 0) > 0 else []

        def specs(key):
            out = []
            for t in config.get(key, []):
                dtype = t.get("data_type", "TYPE_FP32")
                if dtype not in _KSERVE:
                    raise TritonModelException(f"{key} '{t.get('name')}' is {dtype}, which the MLOS Python bridge does not carry")
                # The model's own shape: a reshape is the core's to apply (clients see dims).
                dims = t.get("reshape", {}).get("shape", t.get("dims", []))
                out.append({"name": t["name"], "dtype": _KSERVE[dtype], "shape": batch + [int(d) for d in dims]})
            return out
        return {"inputs": specs("input"), "outputs": specs("output")}

    def infer(self, handle, inputs):
        model = self._models[handle]
        if model.instance is None:
            raise TritonModelException(f"model '{model.name}' is not loaded")
        outputs = [t["name"] for t in model.config.get("output", [])]
        requests = [InferenceRequest([Tensor(n, a) for n, a in inputs.items()], outputs,
                                     model_name=model.name, model_version=model.version)]
        responses = model.instance.execute(requests)
        del requests  # the inputs are the caller's memory: nothing may keep them past the call
        if not isinstance(responses, (list, tuple)) or len(responses) != 1:
            raise TritonModelException(f"execute() must return a list of one InferenceResponse per request (1), not {_describe(responses)}")
        response = responses[0]
        if not isinstance(response, InferenceResponse):
            raise TritonModelException(f"execute() returned a {type(response).__name__} where an InferenceResponse goes")
        if response.has_error():
            error = response.error()
            raise TritonError(error.message() if isinstance(error, TritonError) else str(error))
        return {t.name(): t.as_numpy() for t in response.output_tensors()}


def _describe(value):
    return f"a list of {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__
