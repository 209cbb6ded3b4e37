using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// Tensor specs in model info JSON, the same for every plugin:
/// <c>"inputs":[{"name":…,"datatype":"FP32","shape":[-1,16]}]</c>. What is unknown is left out
/// (no "datatype" for <see cref="SmiDtype.Invalid"/>, no "shape" for null dims) rather than
/// written as a value a client could take for a real one.
/// </summary>
public static class TensorSpecJson
{
    public static void Write(Utf8JsonWriter w, string property, ReadOnlySpan<TensorSpec> specs)
    {
        w.WriteStartArray(property);
        foreach (var s in specs)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            if (s.Dtype != SmiDtype.Invalid) w.WriteString("datatype", SmiDtypes.Name(s.Dtype));
            if (s.Dims is { } dims)
            {
                w.WriteStartArray("shape");
                foreach (var d in dims) w.WriteNumberValue(d);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
