import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// An HTTP/1.1 server for a Hummingbird responder that accepts on a listening socket it inherited
/// (bound once by the supervisor) instead of binding its own, so every worker shares one port.
///
/// Hummingbird's `Application` can only bind; this serves the same `HTTP1Channel` and responder on an
/// existing descriptor, accepting through `SharedSocketAcceptor`. On graceful shutdown it stops accepting,
/// lets in-flight requests and streams finish (idle keep-alive connections are closed), and returns once
/// every connection has ended.
public struct InheritedSocketServer<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> & RequestContext {
    /// The listening socket to accept on; the server owns it from now on.
    public let descriptor: Int32
    /// Produces responses.
    public let responder: Responder
    /// Connection and request logger.
    public let logger: Logger
    /// Close a keep-alive connection idle this long.
    public let idleTimeout: TimeAmount
    /// Called once the server accepts.
    public let onServing: @Sendable () -> Void

    /// A server on `descriptor` answering with `responder`.
    public init(
        descriptor: Int32, responder: Responder, logger: Logger, idleTimeout: TimeAmount = .seconds(75),
        onServing: @escaping @Sendable () -> Void = {}
    ) {
        self.descriptor = descriptor
        self.responder = responder
        self.logger = logger
        self.idleTimeout = idleTimeout
        self.onServing = onServing
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let logger = logger
        let responder = responder
        let registry = ConnectionRegistry()
        let http = HTTP1Channel(
            responder: { (request: Request, writer: consuming ResponseWriter, channel: any Channel) in
                registry.requestStarted(on: channel)
                let context = Responder.Context(source: .init(channel: channel, logger: logger))
                let response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPParserError {
                    throw error
                } catch let error as any HTTPResponseError {
                    response = try error.response(from: request, context: context)
                } catch {
                    logger.error("unhandled error", metadata: ["error": "\(error)"])
                    response = Response(status: .internalServerError)
                }
                try await writer.write(response: response.head, body: response.body)
            },
            configuration: .init(idleTimeout: idleTimeout)
        )
        let acceptor = try SharedSocketAcceptor(listener: descriptor, logger: logger)
        let accepted = acceptor.connections()
        onServing()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { connections in
                for await socket in accepted {
                    connections.addTask {
                        let connection: HTTP1Channel.Value
                        do {
                            // A connected socket becomes a NIO channel like one NIO accepted itself.
                            connection = try await ClientBootstrap(group: group)
                                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                                .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                                .withConnectedSocket(socket) { channel in
                                    http.setup(channel: channel, logger: logger)
                                }
                        } catch {
                            logger.warning("could not set up an accepted connection: \(error)")
                            return
                        }
                        registry.insert(connection.channel)
                        await http.handle(value: connection, logger: logger)
                    }
                }
            }
        } onGracefulShutdown: {
            acceptor.stop()
            registry.quiesceAll()
        }
    }
}
