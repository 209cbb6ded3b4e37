using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// A model's <see cref="Core.Models.ModelStatistics"/> as the protocol's <c>ModelStatistics</c>
/// message: the numbers the REST statistics route writes (RegistryJson.Statistics), field for
/// field.
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
        foreach (var b in s.Batches)
            answer.BatchStats.Add(new InferBatchStatistics
            {
                BatchSize = (ulong)b.BatchSize,
                ComputeInput = Duration(b.ComputeInput),
                ComputeInfer = Duration(b.ComputeInfer),
                ComputeOutput = Duration(b.ComputeOutput),
            });
        return answer;
    }

    private static StatisticDuration Duration(Core.Models.ModelStatistics.Duration d) => new() { Count = (ulong)d.Count, Ns = (ulong)d.Nanoseconds };
}
