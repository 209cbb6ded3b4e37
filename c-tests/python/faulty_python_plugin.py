"""A Python plugin that breaks the protocol on purpose, one way per model name, so the bridge's
error paths can be tested: each model answers inference() as its name says."""
import numpy as np


class FaultyPlugin:
    def __init__(self):
        self.names = {}
        self.kept = None

    def initialize(self, config=None):
        return 0

    def register_model(self, handle, metadata):
        if metadata['name'] == 'refuse-register':
            return -8  # SMI_ERROR_ALREADY_EXISTS, a valid status the bridge passes on
        self.names[handle] = metadata['name']
        return 0

    def load_model(self, handle, path):
        if self.names[handle] == 'raise-on-load':
            raise FileNotFoundError(f"no weights at {path}")
        return 0

    def inference(self, handle, data):
        name = self.names[handle]
        if name == 'raise':
            raise ValueError(f"bad input of {len(data)} bytes")
        if name == 'wrong-type':
            return 42
        if name == 'wrong-tuple':
            return ("text, not bytes", 0)
        if name == 'wrong-status':
            return b"", 7
        if name == 'not-found-status':
            return None, -3
        if name == 'plain-bytes':
            return bytes(reversed(data))
        return data, 0

    def infer(self, handle, inputs):
        name = self.names[handle]
        if name == 'keep-input':
            self.kept = inputs['x']  # the bridge must refuse this: the memory is the caller's
            return {'y': np.zeros(1, np.float32)}
        if name == 'bad-dtype':
            return {'y': np.array(['text'])}
        if name == 'raise':
            raise RuntimeError("typed infer failed")
        if name == 'spin':
            while True:  # never returns by itself: only a deadline (TimeoutError) ends it
                pass
        return [inputs['x'] * 2]  # a list: outputs named output_0...

    def get_plugin_name(self):
        return "Faulty Python Plugin"
