using Google.Protobuf;
using Mlos.Server.Grpc.Protocol;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;

namespace Mlos.Server.Tests;

/// <summary>
/// Open Inference Protocol gRPC requests made from a fixture's .ref tensors, and what an answer
/// is compared with. Shared by the gRPC tests and the container check (tests/Mlos.ContainerCheck).
/// </summary>
public static class GrpcRequests
{
    public static InferInputTensor Input(RefTensor t)
    {
        var input = new InferInputTensor { Name = t.Name, Datatype = t.Dtype };
        input.Shape.AddRange(t.Shape);
        return input;
    }

    /// <summary>The inputs as raw_input_contents, in order.</summary>
    public static ModelInferRequest Raw(string model, IEnumerable<RefTensor> inputs, string? id = null)
    {
        var r = new ModelInferRequest { ModelName = model, Id = id ?? "" };
        foreach (var t in inputs)
        {
            r.Inputs.Add(Input(t));
            r.RawInputContents.Add(ByteString.CopyFrom(t.Bytes()));
        }
        return r;
    }

    /// <summary>Each output's raw contents by name.</summary>
    public static Dictionary<string, byte[]> Outputs(ModelInferResponse answer) =>
        answer.Outputs.Select((o, i) => (o.Name, answer.RawOutputContents[i].ToByteArray())).ToDictionary(p => p.Name, p => p.Item2);

    /// <summary>
    /// The largest difference between two FP32 tensors' values (infinity when their sizes differ).
    /// Computed floats: a .ref holds what ONNX Runtime in Python answered, which may differ in the last bit.
    /// </summary>
    public static float MaxDifference(byte[] expected, byte[] got)
    {
        if (expected.Length != got.Length) return float.PositiveInfinity;
        float most = 0;
        for (int i = 0; i + 4 <= expected.Length; i += 4)
            most = Math.Max(most, Math.Abs(BitConverter.ToSingle(expected, i) - BitConverter.ToSingle(got, i)));
        return most;
    }

    /// <summary>What a close FP32 answer may differ by.</summary>
    public const float Tolerance = 1e-5f;
}
