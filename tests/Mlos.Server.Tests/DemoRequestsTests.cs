using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// The ready-to-paste curl lines the server prints at start: each one it prints, sent as curl
/// would send it, must answer 200, for models of one input, of several, and of many datatypes.
/// </summary>
public partial class DemoRequestsTests
{
    [GeneratedRegex("""^\s*curl -s (?<url>\S+) -H 'Content-Type: application/json' -d '(?<body>.*)'$""", RegexOptions.Multiline)]
    private static partial Regex CurlLine();

    [Fact]
    public async Task Every_printed_curl_line_answers_200_with_every_input_filled()
    {
        var root = Directory.CreateTempSubdirectory("mlos-demo-").FullName;
        try
        {
            foreach (var file in new[] { "mlp.onnx", "multi_io.onnx", "dtypes.onnx" })
                File.Copy(Path.Combine(BuildTree.Models("onnx"), file), Path.Combine(root, file));
            using var server = new ServerProcess(root, "--model", "mlp=mlp.onnx", "--model", "multi=multi_io.onnx", "--model", "dtypes=dtypes.onnx");
            var lines = CurlLine().Matches(server.OutputOnce("/v2/models/multi/infer"));
            // Two per model (MLOS and KServe v2): 1 input, 2 inputs, and 12 of 12 datatypes.
            var urls = lines.Select(m => new Uri(m.Groups["url"].Value).AbsolutePath).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(["/models/dtypes/inference", "/models/mlp/inference", "/models/multi/inference",
                          "/v2/models/dtypes/infer", "/v2/models/mlp/infer", "/v2/models/multi/infer"], urls);
            foreach (Match line in lines)
            {
                using var answer = await server.Client.PostAsync(new Uri(line.Groups["url"].Value).PathAndQuery,
                    new StringContent(line.Groups["body"].Value, Encoding.UTF8, "application/json"));
                Assert.True(answer.StatusCode == HttpStatusCode.OK, $"{line.Value}\n-> {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
            }
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
