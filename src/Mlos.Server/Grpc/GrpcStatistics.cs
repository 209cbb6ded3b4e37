using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// A model's <see cref="Core.Models.ModelStatistics"/> as the protocol's <c>ModelStatistics</c>
/// message: the numbers the REST statistics route writes (RegistryJson.Statistics), field for
/// field (compute_input and compute_output as the snapshot defines them).
/// </summary>
internal static class GrpcStatistics
{
    public static Protocol.ModelStatistics Of(Model m)
    {
        var s = m.Statistics.Read();
        var answer = new Protocol.ModelStatistics
        {
            Name = m.Id,
            Version = m.ServedVersion,
            LastInference = (ulong)s.LastInferenceMs,
            InferenceCount = (ulong)s.InferenceCount,
            ExecutionCount = (ulong)s.ExecutionCount,
            InferenceStats = new InferStatistics
            {
                Success = Duration(s.Success),
                Fail = Duration(s.Fail),
                Queue = Duration(s.Queue),
                ComputeInput = Duration(s.ComputeInput),
                ComputeInfer = Duration(s.ComputeInfer),
                ComputeOutput = Duration(s.ComputeOutput),
                CacheHit = new StatisticDuration(),
                CacheMiss = new StatisticDuration(),
            },
        };
        foreach (var (size, infer) in s.Batches)
            answer.BatchStats.Add(new InferBatchStatistics
            {
                BatchSize = (ulong)size,
                ComputeInput = Duration(Core.Models.ModelStatistics.Snapshot.InPlace(infer)),
                ComputeInfer = Duration(infer),
                ComputeOutput = Duration(Core.Models.ModelStatistics.Snapshot.InPlace(infer)),
            });
        return answer;
    }

    private static StatisticDuration Duration(Core.Models.ModelStatistics.Duration d) => new() { Count = (ulong)d.Count, Ns = (ulong)d.Nanoseconds };
}
