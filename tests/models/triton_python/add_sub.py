"""A Triton Python-backend model for the repository tests: OUTPUT0 = INPUT0 + INPUT1 and
OUTPUT1 = INPUT0 - INPUT1, typed as its config says, written against triton_python_backend_utils
the way Triton's Python-backend documentation describes it. A request whose INPUT0 holds a value
above 1e6 gets an error response."""
import json

import numpy as np
import triton_python_backend_utils as pb_utils

from add_sub_limits import too_large  # a module beside model.py, as Triton models import them


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.dtypes = [pb_utils.triton_string_to_numpy(pb_utils.get_output_config_by_name(config, name)["data_type"])
                       for name in ("OUTPUT0", "OUTPUT1")]
        self.version = args["model_version"]

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            if too_large(a):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("INPUT0 holds a value above 1e6")))
                continue
            out0 = pb_utils.Tensor("OUTPUT0", (a + b).astype(self.dtypes[0]))
            out1 = pb_utils.Tensor("OUTPUT1", (a - b).astype(self.dtypes[1]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out0, out1]))
        return responses

    def finalize(self):
        self.dtypes = None
