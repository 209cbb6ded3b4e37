using System.Diagnostics.CodeAnalysis;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace Mlos.Server.Grpc;

/// <summary>
/// How every gRPC service of this server binds its methods: written out instead of generated
/// (Grpc.Tools makes the messages only). Two reasons. A request that is not a valid protobuf
/// message must be the client's mistake (INVALID_ARGUMENT, as Triton answers it); the generated
/// marshallers let the parser's exception through, which Grpc.AspNetCore reports as UNKNOWN
/// ("Exception was thrown by handler"). And the generated binding is found and invoked through
/// reflection on the service type; here each method is a plain delegate, which NativeAOT needs no
/// metadata for and which costs nothing to map at start-up.
/// </summary>
internal static class GrpcBinding
{
    // The same trimming annotation as ServiceMethodProviderContext's own type parameter.
    public static void Unary<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.NonPublicMethods)] TService, TRequest, TResponse>(ServiceMethodProviderContext<TService> context, string service, string name,
        MessageParser<TRequest> parser, UnaryServerMethod<TService, TRequest, TResponse> invoke)
        where TService : class where TRequest : class, IMessage<TRequest> where TResponse : class, IMessage<TResponse>, new() =>
        context.AddUnaryMethod(new Method<TRequest, TResponse>(MethodType.Unary, service, name, Marshaller(parser), Marshaller(new MessageParser<TResponse>(() => new TResponse()))),
            [], invoke);

    /// <summary>
    /// Protobuf in and out; a message that does not parse is INVALID_ARGUMENT with the parser's
    /// reason. <paramref name="written"/> runs once a message is serialized: inference answers give
    /// back the outputs their raw contents wrap (<see cref="AnswerLease"/>).
    /// </summary>
    public static Marshaller<T> Marshaller<T>(MessageParser<T> parser, Action<T>? written = null) where T : class, IMessage<T> =>
        Marshallers.Create<T>(
            (message, context) =>
            {
                try
                {
                    context.SetPayloadLength(message.CalculateSize());
                    message.WriteTo(context.GetBufferWriter());
                    context.Complete();
                }
                finally { written?.Invoke(message); }
            },
            context =>
            {
                try { return parser.ParseFrom(context.PayloadAsReadOnlySequence()); }
                catch (InvalidProtocolBufferException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request is not a valid {typeof(T).Name} message: {e.Message}"));
                }
            });
}
