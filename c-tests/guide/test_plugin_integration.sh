#!/bin/bash
# test_plugin_integration.sh

echo "Testing plugin integration..."

# Start MLOS Core
./build/mlos_core &
MLOS_PID=$!
sleep 3

# Register plugin
curl -X POST http://localhost:8080/plugins/register \
    -H "Content-Type: application/json" \
    -d '{
        "id": "test-plugin",
        "name": "Test Plugin",
        "version": "1.0.0",
        "endpoint": "file://./plugins/libtest_plugin.so"
    }'

# Register model
curl -X POST http://localhost:8080/models/register \
    -H "Content-Type: application/json" \
    -d '{
        "model_id": "test-model",
        "plugin_id": "test-plugin",
        "name": "Test Model",
        "path": "./models/test_model.bin"
    }'

# Run inference
curl -X POST http://localhost:8080/models/test-model/inference \
    -H "Content-Type: application/json" \
    -d '{"input": "test data"}'

# Cleanup
kill $MLOS_PID
echo "Integration test completed"
