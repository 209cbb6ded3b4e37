using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime.Tests;

public class OnnxConfigTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("test-config")]
    [InlineData("  ")]
    public void Labels_mean_defaults(string? config) => Assert.Same(OnnxConfig.Defaults, OnnxConfig.Parse(config, OnnxConfig.Defaults));

    [Fact]
    public void Options_are_read_over_the_basis()
    {
        var plugin = OnnxConfig.Parse("""{"device":"cpu","intra_op_threads":1,"graph_optimization_level":"basic"}""", OnnxConfig.Defaults);
        var model = OnnxConfig.Parse("""{"inter_op_threads":1,"allow_cpu_fallback":true,"inputs":"ignored"}""", plugin);
        Assert.Equal(1, model.IntraOpThreads);
        Assert.Equal(1, model.InterOpThreads);
        Assert.Equal(GraphOptimizationLevel.ORT_ENABLE_BASIC, model.OptimizationLevel);
        Assert.True(model.AllowCpuFallback);
        Assert.Null(model.CudaDevice);
        Assert.Equal(1, OnnxConfig.Parse("""{"device":"cuda:1"}""", plugin).CudaDevice);
        Assert.Equal("cuda:0", OnnxConfig.Parse("""{"device":"cuda"}""", plugin).Device);
    }

    [Fact]
    public void Thread_counts_past_the_cores_are_the_cores()
    {
        // 2^31-1 threads asked for must not start them (CpuThreads.Fit): one such request took 20 s.
        var config = OnnxConfig.Parse("""{"intra_op_threads":2147483647,"inter_op_threads":0}""", OnnxConfig.Defaults);
        Assert.Equal(Environment.ProcessorCount, config.IntraOpThreads);
        Assert.Equal(0, config.InterOpThreads);
    }

    [Theory]
    [InlineData("""{"device":"tpu"}""", "device must be \"cpu\" or \"cuda:N\"")]
    [InlineData("""{"device":"cuda:-1"}""", "device must be")]
    [InlineData("""{"intra_op_threads":"four"}""", "intra_op_threads must be a non-negative integer")]
    [InlineData("""{"intra_op_threads":-1}""", "intra_op_threads must be a non-negative integer")]
    [InlineData("""{"graph_optimization_level":"max"}""", "graph_optimization_level must be")]
    [InlineData("""{"allow_cpu_fallback":"yes"}""", "allow_cpu_fallback must be true or false")]
    [InlineData("""{"gpu_mem_limit":-5}""", "gpu_mem_limit must be a byte count")]
    [InlineData("""{"device":""", "not valid JSON")]
    public void Bad_options_are_invalid_params(string json, string reason)
    {
        var e = Assert.Throws<SmiException>(() => OnnxConfig.Parse(json, OnnxConfig.Defaults));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Cuda_without_cuda_libraries_is_a_clear_error_or_a_fallback()
    {
        var cuda = OnnxConfig.Parse("""{"device":"cuda:0"}""", OnnxConfig.Defaults);
        try
        {
            cuda.CreateSessionOptions("m").Dispose();
            // A machine with the CUDA 13 runtime: nothing to check here.
        }
        catch (SmiException e)
        {
            Assert.Equal(SmiStatus.NotSupported, e.Status);
            Assert.Contains("CUDA is not usable", e.Message);
            Assert.Contains("allow_cpu_fallback", e.Message);
            // With the fallback allowed the same machine gets CPU session options.
            (cuda with { AllowCpuFallback = true }).CreateSessionOptions("m").Dispose();
        }
    }
}
