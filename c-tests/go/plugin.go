// A real SMI plugin in Go (-buildmode=c-shared): the Go functions behind the C table in
// table.go. Two kinds of model, chosen by the registered framework:
//   - "echo":   output = input bytes (the guide's Go example, without the fake pointer);
//   - "affine": float32 elementwise y = scale*x + bias, scale and bias read from the model file,
//               a JSON object {"scale": 2.5, "bias": -1}.
// Thread-safe: the model table is behind a RWMutex; inference only reads. No panic leaves: each
// export recovers and reports SMI_ERROR_RUNTIME with the panic text as the last error.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include "mlos/smi_spec.h"
void mlos_go_set_error(const char* message);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"unsafe"
)

type model struct {
	name      string
	framework string
	path      string
	loaded    bool
	scale     float32
	bias      float32
}

var (
	mu          sync.RWMutex
	models      = map[uintptr]*model{}
	nextID      uintptr
	initialized bool
)

// fail records message as this thread's last error and returns status.
func fail(status C.int, format string, args ...any) C.int {
	msg := C.CString(fmt.Sprintf(format, args...))
	C.mlos_go_set_error(msg)
	C.free(unsafe.Pointer(msg))
	return status
}

// guard runs body, turning a panic into SMI_ERROR_RUNTIME: a Go panic must not unwind into C.
func guard(body func() C.int) (rc C.int) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail(C.SMI_ERROR_RUNTIME, "go plugin panic: %v", r)
		}
	}()
	return body()
}

func lookup(id C.uintptr_t) (*model, C.int) {
	m, ok := models[uintptr(id)]
	if !ok {
		return nil, fail(C.SMI_ERROR_NOT_FOUND, "unknown model handle %d", uintptr(id))
	}
	return m, C.SMI_SUCCESS
}

//export goInitialize
func goInitialize(config *C.char) C.int {
	return guard(func() C.int {
		// JSON options or any plain label (the guide's harness passes "test-config").
		if config != nil {
			text := C.GoString(config)
			if len(text) > 0 && text[0] == '{' {
				var options map[string]any
				if err := json.Unmarshal([]byte(text), &options); err != nil {
					return fail(C.SMI_ERROR_INVALID_PARAM, "plugin config is not valid JSON: %v", err)
				}
			}
		}
		mu.Lock()
		initialized = true
		mu.Unlock()
		return C.SMI_SUCCESS
	})
}

//export goCleanup
func goCleanup() C.int {
	return guard(func() C.int {
		mu.Lock()
		models = map[uintptr]*model{}
		initialized = false
		mu.Unlock()
		return C.SMI_SUCCESS
	})
}

//export goRegisterModel
func goRegisterModel(name, framework, path, config *C.char, id *C.uintptr_t) C.int {
	return guard(func() C.int {
		m := &model{name: C.GoString(name), framework: C.GoString(framework)}
		if path != nil {
			m.path = C.GoString(path)
		}
		switch m.framework {
		case "echo", "affine":
		case "":
			m.framework = "echo"
		default:
			return fail(C.SMI_ERROR_NOT_SUPPORTED, "go plugin serves frameworks echo and affine, not %q", m.framework)
		}
		mu.Lock()
		defer mu.Unlock()
		if !initialized {
			return fail(C.SMI_ERROR_INVALID_STATE, "go plugin is not initialized")
		}
		nextID++
		models[nextID] = m
		*id = C.uintptr_t(nextID)
		return C.SMI_SUCCESS
	})
}

//export goUnregisterModel
func goUnregisterModel(id C.uintptr_t) C.int {
	return guard(func() C.int {
		mu.Lock()
		defer mu.Unlock()
		if _, rc := lookup(id); rc != C.SMI_SUCCESS {
			return rc
		}
		delete(models, uintptr(id))
		return C.SMI_SUCCESS
	})
}

// withModel runs change on model id under the write lock, panics recovered.
func withModel(id C.uintptr_t, change func(m *model) C.int) C.int {
	return guard(func() C.int {
		mu.Lock()
		defer mu.Unlock()
		m, rc := lookup(id)
		if rc != C.SMI_SUCCESS {
			return rc
		}
		return change(m)
	})
}

//export goLoadModel
func goLoadModel(id C.uintptr_t, path *C.char) C.int {
	return withModel(id, func(m *model) C.int {
		if path != nil {
			m.path = C.GoString(path)
		}
		if m.framework == "affine" {
			data, err := os.ReadFile(m.path)
			if err != nil {
				return fail(C.SMI_ERROR_NOT_FOUND, "cannot read affine model %q: %v", m.path, err)
			}
			var p struct {
				Scale *float32 `json:"scale"`
				Bias  *float32 `json:"bias"`
			}
			if err := json.Unmarshal(data, &p); err != nil || p.Scale == nil || p.Bias == nil {
				return fail(C.SMI_ERROR_INVALID_PARAM, "affine model %q must be JSON {\"scale\": number, \"bias\": number} (%v)", m.path, err)
			}
			m.scale, m.bias = *p.Scale, *p.Bias
		}
		m.loaded = true
		return C.SMI_SUCCESS
	})
}

//export goUnloadModel
func goUnloadModel(id C.uintptr_t) C.int {
	return withModel(id, func(m *model) C.int {
		m.loaded = false
		return C.SMI_SUCCESS
	})
}

//export goInference
func goInference(id C.uintptr_t, input unsafe.Pointer, inputSize C.size_t, output unsafe.Pointer, outputSize *C.size_t) C.int {
	return guard(func() C.int {
		mu.RLock()
		m, rc := lookup(id)
		var loaded, affine bool
		var scale, bias float32
		if rc == C.SMI_SUCCESS {
			loaded, affine, scale, bias = m.loaded, m.framework == "affine", m.scale, m.bias
		}
		mu.RUnlock()
		if rc != C.SMI_SUCCESS {
			return rc
		}
		if !loaded {
			return fail(C.SMI_ERROR_INVALID_STATE, "model %q is not loaded", m.name)
		}
		n := int(inputSize)
		if affine && n%4 != 0 {
			return fail(C.SMI_ERROR_INVALID_PARAM, "affine model %q takes float32 values: %d bytes is not a multiple of 4", m.name, n)
		}
		if int(*outputSize) < n {
			given := int(*outputSize)
			*outputSize = C.size_t(n)
			return fail(C.SMI_ERROR_BUFFER_TOO_SMALL, "output buffer too small: %d bytes needed, %d given", n, given)
		}
		if n > 0 {
			// Caller memory, read and written in place: no copy into Go memory.
			if affine {
				// x86-64 and arm64 allow unaligned float loads; the SMI caller's buffers are bytes.
				in := unsafe.Slice((*float32)(input), n/4)
				out := unsafe.Slice((*float32)(output), n/4)
				for i, x := range in {
					out[i] = scale*x + bias
				}
			} else {
				copy(unsafe.Slice((*byte)(output), n), unsafe.Slice((*byte)(input), n))
			}
		}
		*outputSize = C.size_t(n)
		return C.SMI_SUCCESS
	})
}

//export goModelInfo
func goModelInfo(id C.uintptr_t, info *C.char, infoSize *C.size_t) C.int {
	return guard(func() C.int {
		mu.RLock()
		m, rc := lookup(id)
		var text []byte
		if rc == C.SMI_SUCCESS {
			text, _ = json.Marshal(map[string]any{"name": m.name, "framework": m.framework, "path": m.path,
				"loaded": m.loaded, "scale": m.scale, "bias": m.bias, "plugin": "go-example"})
		}
		mu.RUnlock()
		if rc != C.SMI_SUCCESS {
			return rc
		}
		need := len(text) + 1
		if int(*infoSize) < need {
			*infoSize = C.size_t(need)
			return fail(C.SMI_ERROR_BUFFER_TOO_SMALL, "model info needs %d bytes", need)
		}
		out := unsafe.Slice((*byte)(unsafe.Pointer(info)), need)
		copy(out, text)
		out[len(text)] = 0
		*infoSize = C.size_t(need)
		return C.SMI_SUCCESS
	})
}

// Required by -buildmode=c-shared; never runs.
func main() {}
