using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Mlos.Server.Grpc.Protocol;

namespace Mlos.Server.Tests;

/// <summary>
/// A POSIX shared-memory object this test process creates: on Linux shm_open("/name") is the file
/// /dev/shm/name, so a FileStream there makes one and deleting the file is shm_unlink.
/// </summary>
public sealed class ShmObject : IDisposable
{
    public ShmObject(long bytes)
    {
        Name = $"mlos-test-{Guid.NewGuid():N}";
        using var file = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite);
        file.SetLength(bytes);
    }

    public string Name { get; }
    public string Key => "/" + Name;
    public string Path => $"/dev/shm/{Name}";

    public void Dispose() => File.Delete(Path);

    /// <summary>Whether process <paramref name="pid"/> holds this object open (a region keeps a descriptor to it).</summary>
    public bool HeldBy(int pid) =>
        new DirectoryInfo($"/proc/{pid}/fd").EnumerateFileSystemInfos().Any(fd =>
        {
            try { return fd.LinkTarget == Path; }
            catch (IOException) { return false; } // closed while listed
        });
}

/// <summary>
/// The system shared-memory extension's REST routes as Triton answers them, on a server started
/// with --allow-shared-memory: register, status, unregister, and each client mistake as its 4xx.
/// Whether the server holds the object open is read from its /proc/PID/fd.
/// </summary>
public sealed class SharedMemoryRegistryTests : IClassFixture<SharedMemoryRegistryTests.Server>
{
    public sealed class Server : IDisposable
    {
        public Server()
        {
            Root = Directory.CreateTempSubdirectory("mlos-shm-").FullName;
            Process = new ServerProcess(Root, "--allow-shared-memory");
        }

        public string Root { get; }
        public ServerProcess Process { get; }

        public void Dispose()
        {
            Process.Dispose();
            Directory.Delete(Root, recursive: true);
        }
    }

    private readonly ServerProcess _server;
    private readonly HttpClient _http;

    public SharedMemoryRegistryTests(Server server)
    {
        _server = server.Process;
        _http = server.Process.Client;
    }

    /// <summary>A register body without a content type, as Triton's clients send it.</summary>
    private async Task<(HttpStatusCode Code, string Body)> Register(string name, string json)
    {
        using var r = await _http.PostAsync($"/v2/systemsharedmemory/region/{name}/register", new ByteArrayContent(Encoding.UTF8.GetBytes(json)));
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    private async Task<(HttpStatusCode Code, string Body)> Post(string path)
    {
        using var r = await _http.PostAsync(path, null);
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    private async Task<(HttpStatusCode Code, string Body)> Get(string path)
    {
        using var r = await _http.GetAsync(path);
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    private static string Error(string body) => JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;

    private bool Mapped(ShmObject shm) => shm.HeldBy(_server.Pid);

    [Fact]
    public async Task A_registered_region_is_mapped_listed_and_unmapped_when_unregistered()
    {
        using var shm = new ShmObject(8192);
        try
        {
            var (code, body) = await Register("r-life", $$"""{"key":"{{shm.Key}}","offset":100,"byte_size":4000}""");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Equal("{}", body);
            Assert.True(Mapped(shm));

            (code, body) = await Get("/v2/systemsharedmemory/region/r-life/status");
            Assert.Equal(HttpStatusCode.OK, code);
            var one = JsonDocument.Parse(body).RootElement;
            Assert.Equal(JsonValueKind.Array, one.ValueKind);
            var region = Assert.Single(one.EnumerateArray());
            Assert.Equal("r-life", region.GetProperty("name").GetString());
            Assert.Equal(shm.Key, region.GetProperty("key").GetString());
            Assert.Equal(100UL, region.GetProperty("offset").GetUInt64());
            Assert.Equal(4000UL, region.GetProperty("byte_size").GetUInt64());

            (code, body) = await Get("/v2/systemsharedmemory/status");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Contains(JsonDocument.Parse(body).RootElement.EnumerateArray(), r => r.GetProperty("name").GetString() == "r-life");

            (code, _) = await Post("/v2/systemsharedmemory/region/r-life/unregister");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.False(Mapped(shm));
            (code, _) = await Get("/v2/systemsharedmemory/region/r-life/status");
            Assert.Equal(HttpStatusCode.NotFound, code);
        }
        finally { await Post("/v2/systemsharedmemory/unregister"); }
    }

    [Fact]
    public async Task A_name_registered_twice_is_409_and_free_again_once_unregistered()
    {
        using var shm = new ShmObject(4096);
        try
        {
            var body = $$"""{"key":"{{shm.Key}}","byte_size":4096}""";
            Assert.Equal(HttpStatusCode.OK, (await Register("r-twice", body)).Code);
            var (code, answer) = await Register("r-twice", body);
            Assert.Equal(HttpStatusCode.Conflict, code);
            Assert.Contains("'r-twice' is already registered", Error(answer));
            Assert.Equal(HttpStatusCode.OK, (await Post("/v2/systemsharedmemory/region/r-twice/unregister")).Code);
            Assert.Equal(HttpStatusCode.OK, (await Register("r-twice", body)).Code);
        }
        finally { await Post("/v2/systemsharedmemory/unregister"); }
    }

    [Fact]
    public async Task A_key_with_no_object_is_400_in_plain_words()
    {
        var key = $"/mlos-test-missing-{Guid.NewGuid():N}";
        var (code, body) = await Register("r-missing", $$"""{"key":"{{key}}","byte_size":16}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        var error = Error(body);
        Assert.Contains($"no shared-memory object '{key}' exists", error);
        Assert.Contains("No such file or directory", error);
        Assert.DoesNotContain("Exception", error);
        Assert.DoesNotContain("/dev/shm", error);
        Assert.Equal(HttpStatusCode.NotFound, (await Get("/v2/systemsharedmemory/region/r-missing/status")).Code);
    }

    [Theory]
    [InlineData("4000", "200", "past the end")]
    [InlineData("0", "4097", "past the end")]
    [InlineData("4096", "1", "past the end")]
    [InlineData("18446744073709551615", "2", "overflows")]
    [InlineData("0", "0", "byte_size above 0")]
    public async Task A_region_outside_its_object_is_400(string offset, string byteSize, string reason)
    {
        using var shm = new ShmObject(4096);
        var (code, body) = await Register("r-bounds", $$"""{"key":"{{shm.Key}}","offset":{{offset}},"byte_size":{{byteSize}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains(reason, Error(body));
        Assert.False(Mapped(shm));
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("""[1,2]""", "must be a JSON object")]
    [InlineData("""{"byte_size":16}""", "needs \"key\"")]
    [InlineData("""{"key":"/KEY"}""", "needs \"byte_size\"")]
    [InlineData("""{"key":7,"byte_size":16}""", "\"key\" must be a string")]
    [InlineData("""{"key":"/KEY","byte_size":"16"}""", "\"byte_size\" must be a non-negative integer")]
    [InlineData("""{"key":"/KEY","byte_size":-16}""", "\"byte_size\" must be a non-negative integer")]
    [InlineData("""{"key":"/KEY","offset":-1,"byte_size":16}""", "\"offset\" must be a non-negative integer")]
    [InlineData("""{"key":"/KEY","offset":1.5,"byte_size":16}""", "\"offset\" must be a non-negative integer")]
    [InlineData("""{"key":"/KEY","byte_size":18446744073709551616}""", "\"byte_size\" must be a non-negative integer")]
    [InlineData("""{"key":"/KEY","byte_size":16,"byte_size":8}""", "given twice")]
    [InlineData("""{"key":"KEY","byte_size":16}""", "not a POSIX shared-memory name")]
    [InlineData("""{"key":"/a/KEY","byte_size":16}""", "not a POSIX shared-memory name")]
    [InlineData("""{"key":"/","byte_size":16}""", "not a POSIX shared-memory name")]
    [InlineData("""{"key":"/KEY\u0000","byte_size":16}""", "not a POSIX shared-memory name")]
    public async Task A_malformed_register_body_is_400_saying_what_is_wrong(string json, string reason)
    {
        using var shm = new ShmObject(4096);
        var (code, body) = await Register("r-body", json.Replace("KEY", shm.Name));
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains(reason, Error(body));
        Assert.False(Mapped(shm));
    }

    [Fact]
    public async Task A_region_name_with_a_slash_is_400()
    {
        using var shm = new ShmObject(4096);
        var (code, body) = await Register("a%2Fb", $$"""{"key":"{{shm.Key}}","byte_size":16}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("name cannot hold", Error(body));
    }

    [Fact]
    public async Task Unregistering_all_empties_the_status_and_unmaps_every_region()
    {
        using var first = new ShmObject(4096);
        using var second = new ShmObject(3 * 4096);
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await Register("r-all-1", $$"""{"key":"{{first.Key}}","byte_size":4096}""")).Code);
            Assert.Equal(HttpStatusCode.OK, (await Register("r-all-2", $$"""{"key":"{{second.Key}}","offset":4096,"byte_size":8192}""")).Code);
            var (code, body) = await Get("/v2/systemsharedmemory/status");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Equal(2, JsonDocument.Parse(body).RootElement.GetArrayLength());
            Assert.True(Mapped(first) && Mapped(second));

            Assert.Equal(HttpStatusCode.OK, (await Post("/v2/systemsharedmemory/unregister")).Code);
            (code, body) = await Get("/v2/systemsharedmemory/status");
            Assert.Equal(HttpStatusCode.OK, code);
            Assert.Equal("[]", body);
            Assert.False(Mapped(first));
            Assert.False(Mapped(second));
        }
        finally { await Post("/v2/systemsharedmemory/unregister"); }
    }

    [Fact]
    public async Task An_unknown_region_is_404()
    {
        var (code, body) = await Get("/v2/systemsharedmemory/region/r-nobody/status");
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("no shared-memory region 'r-nobody' is registered", Error(body));
        (code, body) = await Post("/v2/systemsharedmemory/region/r-nobody/unregister");
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("no shared-memory region 'r-nobody' is registered", Error(body));
    }

    [Fact]
    public async Task Register_refuses_a_foreign_origin_as_the_other_mutating_routes_do()
    {
        using var shm = new ShmObject(4096);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/systemsharedmemory/region/r-origin/register")
        {
            Content = new StringContent($$"""{"key":"{{shm.Key}}","byte_size":16}""", Encoding.UTF8, "text/plain"),
        };
        request.Headers.TryAddWithoutValidation("Origin", "http://evil.example");
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.False(Mapped(shm));
        Assert.Equal(HttpStatusCode.NotFound, (await Get("/v2/systemsharedmemory/region/r-origin/status")).Code);
    }
}

/// <summary>The extension on servers of their own: off without the flag, behind the admin token with one.</summary>
public class SharedMemoryGateTests
{
    [Fact]
    public async Task Without_the_flag_every_route_answers_501()
    {
        var root = Directory.CreateTempSubdirectory("mlos-shm-off-").FullName;
        using var shm = new ShmObject(4096);
        try
        {
            using var server = new ServerProcess(root);
            using var register = await server.Client.PostAsync("/v2/systemsharedmemory/region/r/register",
                new StringContent($$"""{"key":"{{shm.Key}}","byte_size":16}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.NotImplemented, register.StatusCode);
            Assert.Contains("--allow-shared-memory", await register.Content.ReadAsStringAsync());
            using var status = await server.Client.GetAsync("/v2/systemsharedmemory/status");
            Assert.Equal(HttpStatusCode.NotImplemented, status.StatusCode);
            using var one = await server.Client.GetAsync("/v2/systemsharedmemory/region/r/status");
            Assert.Equal(HttpStatusCode.NotImplemented, one.StatusCode);
            using var unregister = await server.Client.PostAsync("/v2/systemsharedmemory/unregister", null);
            Assert.Equal(HttpStatusCode.NotImplemented, unregister.StatusCode);
            // The same gate for the gRPC RPCs: UNIMPLEMENTED, naming the flag.
            using var channel = server.Grpc();
            var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            var e = await Assert.ThrowsAsync<RpcException>(() => grpc.SystemSharedMemoryRegisterAsync(
                new SystemSharedMemoryRegisterRequest { Name = "r", Key = shm.Key, ByteSize = 16 }).ResponseAsync);
            Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
            Assert.Contains("--allow-shared-memory", e.Status.Detail);
            e = await Assert.ThrowsAsync<RpcException>(() => grpc.SystemSharedMemoryStatusAsync(new SystemSharedMemoryStatusRequest()).ResponseAsync);
            Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
            Assert.False(shm.HeldBy(server.Pid));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task With_an_admin_token_register_and_unregister_need_it()
    {
        var root = Directory.CreateTempSubdirectory("mlos-shm-token-").FullName;
        using var shm = new ShmObject(4096);
        try
        {
            using var server = new ServerProcess(root, "--allow-shared-memory", "--admin-token", "s3cret-token");
            async Task<HttpStatusCode> Send(string path, string? auth, string? json = null)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, path);
                if (json is not null) request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
                if (auth is not null) request.Headers.TryAddWithoutValidation("Authorization", auth);
                using var response = await server.Client.SendAsync(request);
                return response.StatusCode;
            }
            var body = $$"""{"key":"{{shm.Key}}","byte_size":16}""";
            Assert.Equal(HttpStatusCode.Unauthorized, await Send("/v2/systemsharedmemory/region/r/register", null, body));
            Assert.Equal(HttpStatusCode.Forbidden, await Send("/v2/systemsharedmemory/region/r/register", "Bearer wrong-token", body));
            Assert.Equal(HttpStatusCode.OK, await Send("/v2/systemsharedmemory/region/r/register", "Bearer s3cret-token", body));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send("/v2/systemsharedmemory/region/r/unregister", null));
            Assert.Equal(HttpStatusCode.Unauthorized, await Send("/v2/systemsharedmemory/unregister", null));
            // Reads need no token, as the other status routes.
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/v2/systemsharedmemory/region/r/status")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, await Send("/v2/systemsharedmemory/unregister", "Bearer s3cret-token"));

            // The gRPC RPCs take the token as "authorization" metadata, by the same rule.
            using var channel = server.Grpc();
            var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            var request = new SystemSharedMemoryRegisterRequest { Name = "g", Key = shm.Key, ByteSize = 16 };
            var e = await Assert.ThrowsAsync<RpcException>(() => grpc.SystemSharedMemoryRegisterAsync(request).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
            e = await Assert.ThrowsAsync<RpcException>(() => grpc.SystemSharedMemoryRegisterAsync(request, new Metadata { { "authorization", "Bearer wrong-token" } }).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
            var admin = new Metadata { { "authorization", "Bearer s3cret-token" } };
            await grpc.SystemSharedMemoryRegisterAsync(request, admin);
            e = await Assert.ThrowsAsync<RpcException>(() => grpc.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest { Name = "g" }).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
            Assert.Single((await grpc.SystemSharedMemoryStatusAsync(new SystemSharedMemoryStatusRequest())).Regions); // reads need none
            await grpc.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest { Name = "g" }, admin);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
