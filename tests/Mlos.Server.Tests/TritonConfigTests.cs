using System.Text;
using Mlos.Server.Triton;
using Mlos.Smi.Abi;

namespace Mlos.Server.Tests;

/// <summary>
/// The config.pbtxt reader, as pure code: text format in, a tree (or a config) or an error with
/// line and column out. Tables of valid and invalid inputs, then a bounded fuzz: mutations of the
/// valid inputs must parse or fail with a reader error, never anything else.
/// </summary>
public class TritonConfigTests
{
    /// <summary>A tree as one line: <c>name=value</c>, strings quoted, messages in braces.</summary>
    private static string Dump(TextMessage m) =>
        string.Join(" ", m.Fields.Select(f => f.Value.Kind switch
        {
            TextValue.Kinds.Message => $"{f.Name}{{{Dump(f.Value.Message!)}}}",
            TextValue.Kinds.String => $"{f.Name}=\"{f.Value.Text}\"",
            _ => $"{f.Name}={f.Value.Text}",
        }));

    [Theory]
    [InlineData("", "")]
    [InlineData("name: \"mlp\"", "name=\"mlp\"")]
    [InlineData("# a comment\nname: 'a' # trailing\n", "name=\"a\"")]
    [InlineData("input { name: \"x\" } input: { name: \"y\" } input < name: \"z\" >", "input{name=\"x\"} input{name=\"y\"} input{name=\"z\"}")]
    [InlineData("dims: [ 1, -1, 0x10 ]", "dims=1 dims=-1 dims=0x10")]
    [InlineData("dims: []", "")]
    [InlineData("input [ { name: \"a\" }, { name: \"b\" } ]", "input{name=\"a\"} input{name=\"b\"}")]
    [InlineData("input: [ { name: \"a\" } ]", "input{name=\"a\"}")]
    [InlineData("a: 1, b: 2; c: 3", "a=1 b=2 c=3")]
    [InlineData("s: \"a\\tb\\x41\\101\\u00e9\\\"'\"", "s=\"a\tbAAé\"'\"")]
    [InlineData("s: \"ab\" 'cd'\n \"ef\"", "s=\"abcdef\"")]
    [InlineData("f: 1.5e-3 g: -2.0f h: .5 i: -inf j: - 7 k: 1E+2", "f=1.5e-3 g=-2.0f h=.5 i=-inf j=-7 k=1E+2")]
    [InlineData("kind: KIND_CPU on: true", "kind=KIND_CPU on=true")]
    [InlineData("a{b{c:1}}d:2", "a{b{c=1}} d=2")]
    [InlineData("s: \"\\U0001F600\"", "s=\"\U0001F600\"")]
    public void Valid_text_format_reads_as_written(string text, string expected) =>
        Assert.Equal(expected, Dump(TextFormat.Parse(text, "config.pbtxt")));

    [Theory]
    [InlineData("name \"x\"", "1:6: expected ':' or '{' after 'name'")]
    [InlineData("name: \"x", "the string is not closed")]
    [InlineData("name: \"x\ny\"", "1:7: the string is not closed before the end of the line")]
    [InlineData("input { name: \"a\"", "the text ends before the message is closed with '}'")]
    [InlineData("input < name: \"a\" }", "expected a field name, found '}'")]
    [InlineData("}", "1:1: '}' closes no message")]
    [InlineData("dims: [1 2]", "1:10: expected ',' or ']' in the list 'dims'")]
    [InlineData("dims [1, 2]", "'dims [' without ':' must list messages")]
    [InlineData("[ext.Foo] { }", "extension and Any fields")]
    [InlineData("a: 1x", "'1x' is not a number")]
    [InlineData("a: 1.2.3", "'1.2.3' is not a number")]
    [InlineData("a: -foo", "'-foo' is not a number")]
    [InlineData("a: @", "1:4: expected a value, found '@'")]
    [InlineData("a:", "expected a value, found the end of the text")]
    [InlineData("a: \"\\q\"", "unknown escape '\\q'")]
    [InlineData("a: \"\\xff\"", "1:4: the string is not valid UTF-8")]
    [InlineData("a: \"\\ud800\"", "is not a Unicode scalar value")]
    [InlineData("a: \"\\u12\"", "an escape needs 4 hex digits")]
    [InlineData("a: \"\\UFFFFFFFF\"", "is not a Unicode scalar value")]
    [InlineData("a: \"\\U00110000\"", "is not a Unicode scalar value")]
    [InlineData("a: \"\\400\"", "an octal escape must be at most \\377")]
    [InlineData("\n\n  name: ?", "3:9: expected a value, found '?'")]
    [InlineData("1a: 2", "1:1: expected a field name, found '1'")]
    public void Invalid_text_format_names_the_place_and_the_fault(string text, string message)
    {
        var e = Assert.Throws<TextFormatException>(() => TextFormat.Parse(text, "config.pbtxt"));
        Assert.StartsWith("config.pbtxt:", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Deep_or_huge_text_is_refused_without_exhausting_the_stack()
    {
        var deep = string.Concat(Enumerable.Repeat("a {", 100_000));
        Assert.Contains("nest deeper than 32 levels", Assert.Throws<TextFormatException>(() => TextFormat.Parse(deep, "c")).Message);
        var huge = new byte[TextFormat.MaxBytes + 1];
        Array.Fill(huge, (byte)' ');
        Assert.Contains("more than the", Assert.Throws<TextFormatException>(() => TextFormat.Parse(huge, "c")).Message);
    }

    private const string Full = """
        name: "mlp"
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "input" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "output" data_type: 11 dims: [ 4 ] } ]
        dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 preserve_ordering: true }
        instance_group [ { count: 2 kind: KIND_CPU } ]
        version_policy: { latest: { num_versions: 2 } }
        default_model_filename: "net.onnx"
        parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
        optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" } ] } }
        model_warmup [{
          name: "zeros" batch_size: 2 count: 3
          inputs { key: "input" value: { data_type: TYPE_FP32 dims: [16] zero_data: true } }
        }]
        """;

    [Fact]
    public void A_full_config_maps_every_honoured_field_and_reports_the_rest()
    {
        var c = TritonModelConfig.Parse(Full, "mlp/config.pbtxt");
        Assert.Equal("mlp", c.Name);
        Assert.Equal("onnxruntime_onnx", c.Platform);
        Assert.Null(c.Backend);
        Assert.Equal(8, c.MaxBatchSize);
        Assert.Equal(("input", SmiDtype.Fp32, null, false), (c.Inputs.Single().Name, c.Inputs[0].Dtype, c.Inputs[0].Reshape, c.Inputs[0].Optional));
        Assert.Equal([16L], c.Inputs[0].Dims!);
        Assert.Equal(SmiDtype.Fp32, c.Outputs.Single().Dtype); // written as its number
        Assert.Equal([4L], c.Outputs[0].Dims!);
        Assert.Equal(100, c.DynamicBatching!.MaxQueueDelayMicroseconds);
        Assert.Equal([4, 8], c.DynamicBatching.PreferredBatchSizes);
        Assert.True(c.DynamicBatching.PreserveOrdering);
        Assert.Equal(new InstanceGroupConfig(null, 2, InstanceKind.Cpu, []), c.InstanceGroups.Single() with { Gpus = [] });
        Assert.Equal(new VersionPolicy.Latest(2), c.Versions);
        Assert.Equal("net.onnx", c.DefaultModelFilename);
        Assert.Equal([KeyValuePair.Create("intra_op_thread_count", "1")], c.Parameters);
        var warmup = c.Warmups.Single();
        Assert.Equal(("zeros", 2, 3), (warmup.Name, warmup.BatchSize, warmup.Count));
        var w = warmup.Inputs.Single();
        Assert.Equal(("input", SmiDtype.Fp32, WarmupData.Zero), (w.Name, w.Dtype, w.Data));
        Assert.Equal([16L], w.Dims);
        Assert.Equal(["optimization.execution_accelerators"], c.Ignored);
        Assert.Equal(1, TritonModelConfig.Parse("optimization { graph { level: 1 } }", "c").GraphLevel);
    }

    [Fact]
    public void Fields_inside_honoured_messages_that_we_do_not_act_on_are_reported_by_path()
    {
        var c = TritonModelConfig.Parse("""
            max_batch_size: 4
            input [{ name: "x" data_type: TYPE_FP32 dims: [4] format: FORMAT_NCHW allow_ragged_batch: true }]
            output [{ name: "y" data_type: TYPE_FP32 dims: [4] label_filename: "labels.txt" }]
            instance_group [{ count: 1 kind: KIND_GPU gpus: [0, 1] rate_limiter { priority: 2 } }]
            dynamic_batching { priority_levels: 2 }
            parameters { key: "k" value { string_value: "v" } }
            response_cache { enable: true }
            """, "c");
        Assert.Equal(["response_cache", "input[0].format", "input[0].allow_ragged_batch", "output[0].label_filename",
            "dynamic_batching.priority_levels", "instance_group[0].rate_limiter"], c.Ignored);
        Assert.Equal([0, 1], c.InstanceGroups[0].Gpus);
    }

    [Fact]
    public void A_config_may_leave_out_what_auto_complete_fills_in()
    {
        var c = TritonModelConfig.Parse("backend: \"pytorch\"", "c");
        Assert.Equal("pytorch", c.Backend);
        Assert.Null(c.MaxBatchSize);
        Assert.Empty(c.Inputs);
        Assert.Null(c.DynamicBatching);
        Assert.Equal(new VersionPolicy.Latest(1), c.Versions); // Triton's default policy
        var empty = TritonModelConfig.Parse("max_batch_size: 8 dynamic_batching { }", "c");
        Assert.Equal(new DynamicBatchingConfig(0, [], false), empty.DynamicBatching! with { PreferredBatchSizes = [] });
        Assert.Empty(empty.DynamicBatching.PreferredBatchSizes);
        var noDims = TritonModelConfig.Parse("input { name: \"x\" data_type: TYPE_INT64 optional: true }", "c");
        Assert.Null(noDims.Inputs[0].Dims);
        Assert.True(noDims.Inputs[0].Optional);
        Assert.Equal(SmiDtype.Bytes, TritonModelConfig.Parse("input { name: \"x\" data_type: TYPE_STRING }", "c").Inputs[0].Dtype);
    }

    [Fact]
    public void Version_policies_pick_from_the_versions_on_disk()
    {
        long[] onDisk = [3, 1, 2, 10];
        Assert.Equal([10L], TritonModelConfig.Parse("", "c").Versions.Select(onDisk));
        Assert.Equal([10L, 3], TritonModelConfig.Parse("version_policy { latest { num_versions: 2 } }", "c").Versions.Select(onDisk));
        Assert.Equal([10L, 3, 2, 1], TritonModelConfig.Parse("version_policy { all { } }", "c").Versions.Select(onDisk));
        Assert.Equal([3L, 1], TritonModelConfig.Parse("version_policy { specific { versions: [1, 3, 7] } }", "c").Versions.Select(onDisk));
        Assert.Empty(TritonModelConfig.Parse("version_policy { specific { versions: 7 } }", "c").Versions.Select(onDisk));
    }

    [Theory]
    [InlineData("max_batch_size: -1", "c:1:17: 'max_batch_size' must be from 0 to 4096, not -1")]
    [InlineData("max_batch_size: 1 max_batch_size: 2", "c:1:35: 'max_batch_size' is not a repeated field but is given 2 times")]
    [InlineData("max_batch_size: \"8\"", "'max_batch_size' must be a whole number, not \"8\"")]
    [InlineData("max_batch_size: 99999999999999999999", "'max_batch_size' must be a whole number")]
    [InlineData("name: 5", "'name' must be a string in quotes, not 5")]
    [InlineData("name: \"\"", "'name' must not be empty")]
    [InlineData("input { data_type: TYPE_FP33 name: \"x\" }", "'input[0].data_type' must be one of TYPE_BOOL")]
    [InlineData("input { name: \"x\" data_type: 99 }", "'input[0].data_type' must be one of")]
    [InlineData("input { data_type: TYPE_FP32 }", "every 'input[0]' needs a \"name\"")]
    [InlineData("input { name: \"x\" } input { name: \"x\" }", "two inputs are named 'x'")]
    [InlineData("input { name: \"x\" dims: [-2] }", "'input[0].dims[0]' must be from -1")]
    [InlineData("max_batch_size: 1 input { name: \"x\" dims: [1,1,1,1,1,1,1,1] }", "has 8 dims; at most 7 fit beside the batch dimension")]
    [InlineData("input: \"x\"", "'input[0]' must be a message")]
    [InlineData("version_policy { latest {} all {} }", "must hold exactly one of latest, all, specific (it holds 2)")]
    [InlineData("version_policy { }", "(it holds 0)")]
    [InlineData("version_policy { specific { versions: [0] } }", "'version_policy.specific.versions[0]' must be from 1")]
    [InlineData("version_policy { latest { num_versions: 0 } }", "must be from 1")]
    [InlineData("version_policy { all { x: 1 } }", "'version_policy.all.x' is not a field of the version policy")]
    [InlineData("sequence_batching { }", "'sequence_batching' is not supported")]
    [InlineData("ensemble_scheduling { step [] }", "'ensemble_scheduling' is not supported")]
    [InlineData("max_batch_size: 0 dynamic_batching { }", "'dynamic_batching' needs 'max_batch_size' > 0")]
    [InlineData("max_batch_size: 8 dynamic_batching { preferred_batch_size: 16 }", "preferred_batch_size' 16 is larger than max_batch_size 8")]
    [InlineData("max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 20000000 }", "must be from 0 to 10000000")]
    [InlineData("instance_group { kind: KIND_CPU gpus: [0] }", "'instance_group[0].gpus' cannot be given for KIND_CPU")]
    [InlineData("instance_group { kind: KIND_TPU }", "must be one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL")]
    [InlineData("instance_group { count: -1 }", "'instance_group[0].count' must be from 0 to 256")]
    [InlineData("parameters { key: \"a\" value { string_value: \"1\" } } parameters { key: \"a\" }", "'parameters' has the key \"a\" twice")]
    [InlineData("parameters { value { string_value: \"1\" } }", "'parameters' entries need a \"key\"")]
    [InlineData("model_warmup { inputs { key: \"x\" value { data_type: TYPE_FP32 dims: 1 } } }", "must give exactly one of zero_data, random_data, input_data_file")]
    [InlineData("model_warmup { inputs { key: \"x\" value { data_type: TYPE_FP32 zero_data: true random_data: true } } }", "exactly one of")]
    [InlineData("model_warmup { inputs { key: \"x\" value { data_type: TYPE_FP32 input_data_file: \"../x\" } } }", "must name a file in the model's warmup folder, not \"../x\"")]
    [InlineData("model_warmup { inputs { key: \"x\" value { zero_data: true } } }", "'model_warmup[0].inputs[\"x\"].value.data_type' is needed")]
    [InlineData("max_batch_size: on", "'max_batch_size' must be a whole number, not on")]
    [InlineData("input { name: \"x\" optional: maybe }", "'input[0].optional' must be true or false, not maybe")]
    public void Invalid_configs_are_refused_with_the_reason(string text, string message)
    {
        var e = Assert.Throws<TextFormatException>(() => TritonModelConfig.Parse(text, "c"));
        Assert.Contains(message, e.Message);
    }

    /// <summary>
    /// Bounded fuzz: 20 000 mutations (seeded, so a failure reproduces) of the valid inputs above:
    /// bytes flipped, syntax characters inserted, ranges cut or repeated. Each must give a config
    /// or a <see cref="TextFormatException"/>; any other exception fails, with the input shown.
    /// </summary>
    [Fact]
    public void Mutated_configs_parse_or_fail_with_a_reader_error_only()
    {
        string[] seeds =
        [
            Full,
            "max_batch_size: 4 input [{ name: \"x\" data_type: TYPE_FP32 dims: [4] format: FORMAT_NCHW }]",
            "version_policy { specific { versions: [1, 3] } } parameters { key: \"k\" value { string_value: \"v\\n\\x41\" } }",
            "s: \"ab\" 'cd' f: 1.5e-3 g: -inf a{b{c:1}}",
        ];
        var alphabet = Encoding.ASCII.GetBytes("{}[]<>:,;#\"'\\-.+0123456789eExfabcuUF_TYPE KIND\n\t");
        var random = new Random(20261201);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        int parsed = 0, refused = 0;
        for (int i = 0; i < 20_000 && DateTime.UtcNow < deadline; i++)
        {
            var text = Encoding.UTF8.GetBytes(seeds[random.Next(seeds.Length)]).ToList();
            for (int m = random.Next(1, 5); m > 0 && text.Count > 0; m--)
            {
                int at = random.Next(text.Count);
                switch (random.Next(5))
                {
                    case 0: text[at] = (byte)random.Next(256); break;
                    case 1: text.Insert(at, alphabet[random.Next(alphabet.Length)]); break;
                    case 2: text.RemoveRange(at, Math.Min(random.Next(1, 16), text.Count - at)); break;
                    case 3: text.InsertRange(at, text.GetRange(at, Math.Min(random.Next(1, 32), text.Count - at))); break;
                    default: text[at] = alphabet[random.Next(alphabet.Length)]; break;
                }
            }
            var bytes = text.ToArray();
            try
            {
                TritonModelConfig.Parse(bytes, "fuzz");
                parsed++;
            }
            catch (TextFormatException) { refused++; }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name} ({e.Message}) on input: {Convert.ToBase64String(bytes)}");
            }
        }
        Assert.True(parsed > 100 && refused > 100, $"{parsed} parsed, {refused} refused: the mutations do not exercise both paths");
    }
}
