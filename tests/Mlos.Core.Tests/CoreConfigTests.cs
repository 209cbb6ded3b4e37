using Mlos.Core.Batching;
using Mlos.Smi.Abi;

namespace Mlos.Core.Tests;

public class CoreConfigTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Empty_config_means_no_plugins(string? json) => Assert.Empty(CoreConfig.Parse(json).Plugins);

    [Fact]
    public void Plugins_with_object_config_pass_it_on_as_json_text()
    {
        var config = CoreConfig.Parse("""{"plugins":[{"path":"a.so","id":"a","config":{"device":"cpu"}},{"path":"b.so","config":"label"}]}""");
        Assert.Equal(2, config.Plugins.Count);
        Assert.Equal(new PluginConfig("a.so", "a", """{"device":"cpu"}"""), config.Plugins[0]);
        Assert.Equal(new PluginConfig("b.so", null, "label"), config.Plugins[1]);
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("""{"plugin":[]}""", "unknown key 'plugin'")]
    [InlineData("""{"plugins":{}}""", "'plugins' must be an array")]
    [InlineData("""{"plugins":[{"id":"x"}]}""", "no 'path'")]
    [InlineData("""{"plugins":[{"path":3}]}""", "'path' must be a string")]
    [InlineData("""{"plugins":[{"path":"x","device":"cpu"}]}""", "unknown key 'device'")]
    public void Bad_config_is_an_invalid_param_with_a_reason(string json, string reason)
    {
        var e = Assert.Throws<MlosException>(() => CoreConfig.Parse(json));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Model_options_read_framework_version_and_config()
    {
        var o = ModelOptions.Parse("""{"framework":"onnx","version":"2","config":{"inputs":[1]}}""");
        Assert.Equal(new ModelOptions("onnx", "2", """{"inputs":[1]}""", BatchingOptions.Default), o);
        Assert.Equal(new ModelOptions(null, null, null, BatchingOptions.Default), ModelOptions.Parse(null));
    }

    [Fact]
    public void Dynamic_batching_is_default_unless_turned_off_or_given()
    {
        Assert.Same(BatchingOptions.Default, ModelOptions.Parse("{}").Batching);
        Assert.True(BatchingOptions.Default.Automatic);
        Assert.Equal(0, BatchingOptions.Default.MaxQueueDelayMicroseconds); // the default never waits
        Assert.Null(ModelOptions.Parse("""{"dynamic_batching":false}""").Batching);
        Assert.Null(ModelOptions.Parse("""{"dynamic_batching":null}""").Batching);
        var required = ModelOptions.Parse("""{"dynamic_batching":true}""").Batching!;
        Assert.False(required.Automatic);
        Assert.Equal(BatchingOptions.DefaultMaxBatchSize, required.MaxBatchSize);
        var given = ModelOptions.Parse("""{"dynamic_batching":{"max_batch_size":8,"max_queue_delay_us":100}}""").Batching!;
        Assert.Equal(new BatchingOptions(8, 100), given);
        Assert.False(given.Automatic);
        Assert.Equal(BatchingOptions.DefaultMaxMergeBytes, given.MaxMergeBytes);
        Assert.Equal(BatchingOptions.DefaultMaxMergeBytes, BatchingOptions.Default.MaxMergeBytes);
        Assert.Equal(0, ModelOptions.Parse("""{"dynamic_batching":{"max_batch_size":8,"max_merge_bytes":0}}""").Batching!.MaxMergeBytes);
        var e = Assert.Throws<MlosException>(() => ModelOptions.Parse("""{"dynamic_batching":"yes"}"""));
        Assert.Contains("must be true, false or an object", e.Message);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("""{"framwork":"onnx"}""", "unknown key 'framwork'")]
    [InlineData("""{"version":1}""", "'version' must be a string")]
    [InlineData("""{"shapes":[[-1,16]]}""", "model options: 'shapes' must be a JSON object")]
    [InlineData("""{"shapes":{"x":[-2]}}""", "'shapes': 'x' must be an array of at most 8 dimensions, each >= 0 or -1")]
    [InlineData("""{"shapes":{"x":"16"}}""", "'shapes': 'x' must be an array")]
    public void Bad_model_options_are_refused(string json, string reason)
    {
        var e = Assert.Throws<MlosException>(() => ModelOptions.Parse(json));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Declared_shapes_are_read_whole()
    {
        var options = ModelOptions.Parse("""{"shapes":{"input":[-1,16],"scalar":[]}}""");
        Assert.Equal([-1L, 16], options.DeclaredShapes["input"]);
        Assert.Empty(options.DeclaredShapes["scalar"]);
        Assert.Same(ModelOptions.NoShapes, ModelOptions.Parse("{}").DeclaredShapes);
    }
}
