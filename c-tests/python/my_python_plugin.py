"""The guide's MyPythonPlugin, on numpy alone: the sample class the Python bridge is tested with.

Same shape as the guide's class (models keyed by handle, (bytes, status) answers, SMI status
ints). Two kinds of model, chosen by the registered framework:
  - "echo":   the output is the input;
  - "affine": float32 elementwise y = scale * x + bias, with scale and bias read from the model
              file, a JSON object {"scale": 2.5, "bias": -1} (the Go plugin serves the same).
Typed tensors (SMI 1.1 infer) arrive as numpy arrays over the caller's memory.
"""
import json
import logging

import numpy as np

SMI_SUCCESS, SMI_ERROR_INVALID_PARAM, SMI_ERROR_NOT_FOUND, SMI_ERROR_RUNTIME = 0, -1, -3, -5


class MyPythonPlugin:
    def __init__(self):
        self.models = {}
        self.config = {}
        self.logger = logging.getLogger('MyPythonPlugin')

    def initialize(self, config=None):
        """config: the plugin config string (JSON or a plain label such as "test-config")."""
        self.logger.info("Initializing Python plugin with config: %s", config)
        if config and config.lstrip().startswith('{'):
            self.config = json.loads(config)
        return SMI_SUCCESS

    def register_model(self, handle, metadata):
        framework = metadata.get('framework') or 'echo'
        if framework not in ('echo', 'affine'):
            self.logger.error("unsupported framework %s", framework)
            return -4  # SMI_ERROR_NOT_SUPPORTED
        self.models[handle] = {'metadata': metadata, 'framework': framework, 'model': None, 'loaded': False}
        return SMI_SUCCESS

    def unregister_model(self, handle):
        return SMI_SUCCESS if self.models.pop(handle, None) is not None else SMI_ERROR_NOT_FOUND

    def load_model(self, handle, model_path):
        if handle not in self.models:
            return SMI_ERROR_NOT_FOUND
        info = self.models[handle]
        if info['framework'] == 'affine':
            with open(model_path, encoding='utf-8') as f:
                params = json.load(f)
            info['model'] = (np.float32(params['scale']), np.float32(params['bias']))
        info['loaded'] = True
        return SMI_SUCCESS

    def unload_model(self, handle):
        if handle not in self.models:
            return SMI_ERROR_NOT_FOUND
        self.models[handle].update(model=None, loaded=False)
        return SMI_SUCCESS

    def _run(self, info, x):
        scale, bias = info['model']
        return (x * scale + bias).astype(np.float32)

    def inference(self, handle, input_data):
        info = self.models.get(handle)
        if info is None or not info['loaded']:
            return None, SMI_ERROR_NOT_FOUND
        if info['framework'] == 'echo':
            return input_data, SMI_SUCCESS
        if len(input_data) % 4:
            return None, SMI_ERROR_INVALID_PARAM
        x = np.frombuffer(input_data, dtype=np.float32)
        return self._run(info, x).tobytes(), SMI_SUCCESS

    def infer(self, handle, inputs):
        """Typed inference: {name: numpy array} in, {name: numpy array} out."""
        info = self.models.get(handle)
        if info is None or not info['loaded']:
            return None, SMI_ERROR_NOT_FOUND
        x = inputs['x']
        if info['framework'] == 'echo':
            return {'y': x.copy()}
        return {'y': self._run(info, x)}

    def get_model_io(self, handle):
        dtype = 'FP32' if self.models[handle]['framework'] == 'affine' else 'UINT8'
        return {'inputs': [{'name': 'x', 'dtype': dtype, 'shape': [-1]}],
                'outputs': [{'name': 'y', 'dtype': dtype, 'shape': [-1]}]}

    def get_model_info(self, handle):
        info = self.models[handle]
        return {'name': info['metadata']['name'], 'framework': info['framework'], 'loaded': info['loaded']}

    def cleanup(self):
        self.logger.info("Cleaning up Python plugin")
        self.models.clear()
        return SMI_SUCCESS

    def get_plugin_name(self):
        return "My Python ML Plugin"

    def get_plugin_version(self):
        return "1.0.0"

    def get_supported_frameworks(self):
        return "echo,affine,numpy"
