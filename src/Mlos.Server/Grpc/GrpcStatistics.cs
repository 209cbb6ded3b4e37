using Mlos.Core.Models;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Grpc;

/// <summary>
/// A model's <see cref="Core.Models.ModelStatistics"/> as the protocol's <c>ModelStatistics</c>
/// message: the numbers the REST statistics route writes (RegistryJson.Statistics), field for
/// field. Inputs and outputs reach plugins in place, so compute_input and compute_output count
/// executions with no time of their own.
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
                ComputeInput = Duration(new(s.ExecutionCount, 0)),
                ComputeInfer = Duration(s.ComputeInfer),
                ComputeOutput = Duration(new(s.ExecutionCount, 0)),
                CacheHit = new StatisticDuration(),
                CacheMiss = new StatisticDuration(),
            },
        };
        foreach (var (size, infer) in s.Batches)
            answer.BatchStats.Add(new InferBatchStatistics
            {
                BatchSize = (ulong)size,
                ComputeInput = Duration(new(infer.Count, 0)),
                ComputeInfer = Duration(infer),
                ComputeOutput = Duration(new(infer.Count, 0)),
            });
        return answer;
    }

    private static StatisticDuration Duration(Core.Models.ModelStatistics.Duration d) => new() { Count = (ulong)d.Count, Ns = (ulong)d.Nanoseconds };
}
