using YamlDotNet.RepresentationModel;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// The YAML under deploy/ (KServe, ModelMesh, plain Kubernetes), parsed with YamlDotNet, and
/// the parts of it the server must agree with: each container's image, arguments, ports and probes.
/// </summary>
public static class DeployManifests
{
    public static string Folder => Path.Combine(BuildTree.Repo, "deploy");

    /// <summary>Every document of every .yaml file under deploy/, with its path relative to deploy/.</summary>
    public static IReadOnlyList<(string File, YamlMappingNode Root)> All() =>
        Directory.EnumerateFiles(Folder, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .SelectMany(path =>
            {
                var stream = new YamlStream();
                using (var reader = new StreamReader(path)) stream.Load(reader);
                return stream.Documents.Select(d => (Path.GetRelativePath(Folder, path), (YamlMappingNode)d.RootNode));
            }).ToList();

    /// <summary>The one document of <paramref name="file"/> (relative to deploy/).</summary>
    public static YamlMappingNode Document(string file) => All().Single(d => d.File == file).Root;

    public static YamlNode? Get(this YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next)) return null;
            node = next;
        }
        return node;
    }

    public static string? Text(this YamlNode node, params string[] path) => (node.Get(path) as YamlScalarNode)?.Value;

    public static IReadOnlyList<YamlNode> Items(this YamlNode node, params string[] path) =>
        node.Get(path) is YamlSequenceNode list ? list.Children.ToList() : [];

    public sealed record Probe(string Kind, string Path, string Port);

    public sealed record Container(string Name, string Image, IReadOnlyList<string> Args, IReadOnlyDictionary<string, int> Ports, IReadOnlyList<Probe> Probes)
    {
        /// <summary>A probe's port, by number or by the name of one of the container's ports.</summary>
        public int PortOf(Probe p) => int.TryParse(p.Port, out var n) ? n : Ports[p.Port];

        /// <summary>The value of <c>--option=VALUE</c> among the arguments, or null.</summary>
        public string? Arg(string option) => Args.Where(a => a.StartsWith(option + "=", StringComparison.Ordinal)).Select(a => a[(option.Length + 1)..]).SingleOrDefault();
    }

    /// <summary>The only container of a runtime (spec.containers) or a Deployment (spec.template.spec.containers).</summary>
    public static Container ContainerOf(YamlMappingNode doc)
    {
        var containers = doc.Items("spec", "containers") is { Count: > 0 } runtime ? runtime : doc.Items("spec", "template", "spec", "containers");
        var c = Assert.Single(containers);
        var ports = c.Items("ports").ToDictionary(p => p.Text("name") ?? p.Text("containerPort")!, p => int.Parse(p.Text("containerPort")!));
        var probes = new[] { "readinessProbe", "livenessProbe", "startupProbe" }
            .Where(k => c.Get(k) is not null)
            .Select(k => new Probe(k, c.Text(k, "httpGet", "path")!, c.Text(k, "httpGet", "port")!)).ToList();
        return new Container(c.Text("name")!, c.Text("image")!, c.Items("args").Select(a => ((YamlScalarNode)a).Value!).ToList(), ports, probes);
    }
}
