using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Smi.Tests;

public class PluginOptionsTests
{
    /// <summary>A framework's options as a plugin would declare them: the device keys and one of its own.</summary>
    private sealed record TestConfig : DeviceConfig
    {
        public int Threads { get; init; }
        public static TestConfig Defaults { get; } = new();

        public static TestConfig Parse(string? json, TestConfig basis) => Parse(json, "Test", basis, static (c, o) => o.Name switch
        {
            "threads" => c with { Threads = o.Count() },
            _ => c,
        });
    }

    /// <summary>Reads the single key of <paramref name="json"/> with <paramref name="read"/>.</summary>
    private static T Read<T>(string json, Func<PluginOption, T> read) =>
        PluginOptions.Parse(json, "Test", default(T)!, (_, o) => read(o));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("test-config")]
    [InlineData("[1,2]")]
    public void Labels_mean_the_basis_itself(string? config)
    {
        Assert.Null(PluginOptions.Open(config, "Test"));
        Assert.Same(TestConfig.Defaults, TestConfig.Parse(config, TestConfig.Defaults));
    }

    [Theory]
    [InlineData("{")]
    [InlineData("""{"device":""")]
    [InlineData("""  {"a":1,}""")]
    public void Invalid_json_is_an_invalid_param_that_names_the_framework(string config)
    {
        var e = Assert.Throws<SmiException>(() => PluginOptions.Open(config, "Test"));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.StartsWith("Test config is not valid JSON: ", e.Message);
    }

    [Fact]
    public void Keys_apply_in_order_over_the_basis_and_unknown_keys_pass()
    {
        var plugin = TestConfig.Parse("""{"device":"cuda","threads":2,"threads":3,"inputs":[],"meta":{"x":1}}""", TestConfig.Defaults);
        Assert.IsType<TestConfig>(plugin);
        Assert.Equal(("cuda:0", 0, 3, false), (plugin.Device, plugin.CudaDevice, plugin.Threads, plugin.AllowCpuFallback));
        var model = TestConfig.Parse("""{"allow_cpu_fallback":true,"device":"cuda:3"}""", plugin);
        Assert.Equal(("cuda:3", 3, 3, true), (model.Device, model.CudaDevice, model.Threads, model.AllowCpuFallback));
        Assert.Null(TestConfig.Defaults.CudaDevice);
        Assert.Equal(("cpu", 0, false), (TestConfig.Defaults.Device, TestConfig.Defaults.Threads, TestConfig.Defaults.AllowCpuFallback));
    }

    [Fact]
    public void Readers_give_typed_values()
    {
        Assert.Equal("cpu", Read("""{"d":"cpu"}""", o => o.Device()));
        Assert.Equal("cuda:0", Read("""{"d":"cuda"}""", o => o.Device()));
        Assert.Equal("cuda:12", Read("""{"d":"cuda:12"}""", o => o.Device()));
        Assert.True(Read("""{"b":true}""", o => o.Bool()));
        Assert.False(Read("""{"b":false}""", o => o.Bool()));
        Assert.Equal(int.MaxValue, Read("""{"n":2147483647}""", o => o.Count()));
        Assert.Equal(0, Read("""{"n":0}""", o => o.Threads()));
        Assert.Equal(Environment.ProcessorCount, Read("""{"n":2147483647}""", o => o.Threads()));
        Assert.Equal(ulong.MaxValue, Read("""{"n":18446744073709551615}""", o => o.Bytes()));
        Assert.Equal("/opt/x", Read("""{"p":"/opt/x"}""", o => o.Text("a folder path")));
        Assert.Equal(2, Read("""{"level":"b"}""", o => o.OneOf(("a", 1), ("b", 2), ("c", 3))));
        Assert.Equal("n", Read("""{"n":1}""", o => o.Name));
        Assert.Equal(JsonValueKind.Number, Read("""{"n":1}""", o => o.Value.ValueKind));
    }

    [Theory]
    [InlineData("""{"device":"tpu"}""", "Test config: device must be \"cpu\" or \"cuda:N\", not \"tpu\"")]
    [InlineData("""{"device":"cuda:-1"}""", "Test config: device must be \"cpu\" or \"cuda:N\", not \"cuda:-1\"")]
    [InlineData("""{"device":"cuda:x"}""", "Test config: device must be \"cpu\" or \"cuda:N\", not \"cuda:x\"")]
    [InlineData("""{"device":0}""", "Test config: device must be \"cpu\" or \"cuda:N\", not 0")]
    [InlineData("""{"allow_cpu_fallback":"yes"}""", "Test config: allow_cpu_fallback must be true or false, not \"yes\"")]
    [InlineData("""{"allow_cpu_fallback":1}""", "Test config: allow_cpu_fallback must be true or false, not 1")]
    [InlineData("""{"threads":-1}""", "Test config: threads must be a non-negative integer, not -1")]
    [InlineData("""{"threads":"four"}""", "Test config: threads must be a non-negative integer, not \"four\"")]
    [InlineData("""{"threads":2147483648}""", "Test config: threads must be a non-negative integer, not 2147483648")]
    [InlineData("""{"threads":1.5}""", "Test config: threads must be a non-negative integer, not 1.5")]
    public void Bad_device_and_count_values_say_which_key_and_what_it_must_be(string json, string message)
    {
        var e = Assert.Throws<SmiException>(() => TestConfig.Parse(json, TestConfig.Defaults));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Every_reader_refuses_in_the_same_words()
    {
        static string Refusal(string json, Func<PluginOption, object> read)
        {
            var e = Assert.Throws<SmiException>(() => Read(json, read));
            Assert.Equal(SmiStatus.InvalidParam, e.Status);
            return e.Message;
        }
        Assert.Equal("Test config: n must be a count (0: default), not -3", Refusal("""{"n":-3}""", o => o.Threads("a count (0: default)")));
        Assert.Equal("Test config: m must be a byte count, not -5", Refusal("""{"m":-5}""", o => o.Bytes()));
        Assert.Equal("Test config: m must be a byte count, not \"1G\"", Refusal("""{"m":"1G"}""", o => o.Bytes()));
        Assert.Equal("Test config: p must be a folder path, not 3", Refusal("""{"p":3}""", o => o.Text("a folder path")));
        Assert.Equal("Test config: p must be a string, not null", Refusal("""{"p":null}""", o => o.Text()));
        Assert.Equal("Test config: level must be disable, basic, extended or all, not \"max\"",
            Refusal("""{"level":"max"}""", o => o.OneOf(("disable", 0), ("basic", 1), ("extended", 2), ("all", 3))));
        Assert.Equal("Test config: level must be a or b, not 1", Refusal("""{"level":1}""", o => o.OneOf(("a", 0), ("b", 1))));
        Assert.Equal("Test config: level must be only, not {\"x\":1}", Refusal("""{"level":{"x":1}}""", o => o.OneOf(("only", 0))));
        Assert.Equal("Test config: k must be odd, not 2", Refusal("""{"k":2}""", o => throw o.Invalid("odd")));
    }
}
