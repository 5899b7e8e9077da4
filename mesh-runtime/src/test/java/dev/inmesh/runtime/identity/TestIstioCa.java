package dev.inmesh.runtime.identity;

import com.google.protobuf.DescriptorProtos.DescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.Descriptors;
import com.google.protobuf.DynamicMessage;
import dev.inmesh.runtime.upstream.TestCertificates;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.socket.InternetProtocolFamily;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioServerSocketChannel;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.nio.channels.spi.SelectorProvider;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;

/**
 * istiod's CA on loopback, for the tests: {@code istio.v1.auth.IstioCertificateService/CreateCertificate} served by
 * grpc-java, its messages read and written through descriptors of Istio's proto (not the client's own encoding), the
 * bearer token checked, each CSR's signature verified and its request signed by a CA made in the test for the
 * validity asked for; the answer is the leaf and the CA's certificate. Public for the proxy's tests.
 */
public final class TestIstioCa implements AutoCloseable {
    private static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private static final Metadata.Key<String> CLUSTER_ID =
            Metadata.Key.of("ClusterID", Metadata.ASCII_STRING_MARSHALLER);
    private static final Descriptors.Descriptor REQUEST;
    private static final Descriptors.Descriptor RESPONSE;
    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    static {
        FileDescriptorProto file = FileDescriptorProto.newBuilder()
                .setName("security/proto/istioca.proto").setPackage("istio.v1.auth").setSyntax("proto3")
                .addMessageType(DescriptorProto.newBuilder().setName("IstioCertificateRequest")
                        .addField(field("csr", 1, FieldDescriptorProto.Type.TYPE_STRING, false))
                        .addField(field("subject_id", 2, FieldDescriptorProto.Type.TYPE_STRING, false))
                        .addField(field("validity_duration", 3, FieldDescriptorProto.Type.TYPE_INT64, false)))
                .addMessageType(DescriptorProto.newBuilder().setName("IstioCertificateResponse")
                        .addField(field("cert_chain", 1, FieldDescriptorProto.Type.TYPE_STRING, true)))
                .build();
        try {
            Descriptors.FileDescriptor fd = Descriptors.FileDescriptor.buildFrom(file,
                    new Descriptors.FileDescriptor[0]);
            REQUEST = fd.findMessageTypeByName("IstioCertificateRequest");
            RESPONSE = fd.findMessageTypeByName("IstioCertificateResponse");
        } catch (Descriptors.DescriptorValidationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** One request as the CA saw it. */
    public record Call(Instant at, String authorization, String clusterId, PKCS10CertificationRequest csr,
                long validitySeconds, Status answered) {}

    final TestCertificates.Issued ca = TestCertificates.ca("test-istio-ca");
    public final Queue<Call> calls = new ConcurrentLinkedQueue<>();
    /** The statuses to answer the next requests with, one each, before signing again. */
    final Queue<Status> failures = new ConcurrentLinkedQueue<>();
    /** Run as each request arrives, before it is answered (a test reads the files there). */
    volatile Runnable onCall = () -> {};
    private final String token;
    private final AtomicLong serial = new AtomicLong(1000);
    private final Server server;
    /** The CA's own event loop, or null for grpc's shared ones. */
    private final NioEventLoopGroup loops;

    /**
     * A CA answering on a free loopback port, with TLS when {@code certChain} is given, to requests that bear
     * {@code token} (any request when null).
     */
    public TestIstioCa(String token, Path certChain, Path privateKey) throws IOException {
        this(new InetSocketAddress("127.0.0.1", 0), null, token, certChain, privateKey);
    }

    /**
     * A CA without TLS answering any request on {@code address}, its socket bound by an event loop of its own that
     * the calling thread starts: called in a network namespace, it listens in that one (and only on IPv4).
     */
    public TestIstioCa(InetSocketAddress address) throws IOException {
        this(address, new NioEventLoopGroup(1), null, null, null);
    }

    private TestIstioCa(InetSocketAddress address, NioEventLoopGroup loops, String token, Path certChain,
                        Path privateKey) throws IOException {
        this.token = token;
        this.loops = loops;
        MethodDescriptor<byte[], byte[]> create = MethodDescriptor.<byte[], byte[]>newBuilder()
                .setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName("istio.v1.auth.IstioCertificateService/CreateCertificate")
                .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
        ServerCallHandler<byte[], byte[]> handler = (call, headers) -> {
            call.request(1);
            return new ServerCall.Listener<>() {
                @Override
                public void onMessage(byte[] message) {
                    answer(call, headers, message);
                }
            };
        };
        ServerServiceDefinition service = ServerServiceDefinition.builder("istio.v1.auth.IstioCertificateService")
                .addMethod(create, handler).build();
        NettyServerBuilder b = certChain == null ? NettyServerBuilder.forAddress(address)
                : NettyServerBuilder.forAddress(address,
                        TlsServerCredentials.create(certChain.toFile(), privateKey.toFile()));
        if (loops != null) {
            b.bossEventLoopGroup(loops).workerEventLoopGroup(loops)
                    .channelFactory(() -> new NioServerSocketChannel(SelectorProvider.provider(),
                            InternetProtocolFamily.IPv4));
        }
        server = b.addService(service).build().start();
    }

    public int port() {
        return server.getPort();
    }

    String caPem() {
        return ca.certificatePem();
    }

    public List<Call> calls() {
        return List.copyOf(calls);
    }

    private void answer(ServerCall<byte[], byte[]> call, Metadata headers, byte[] message) {
        onCall.run();
        String auth = headers.get(AUTHORIZATION);
        String clusterId = headers.get(CLUSTER_ID);
        PKCS10CertificationRequest csr = null;
        long validity = 0;
        Status status = Status.OK;
        byte[] answer = null;
        try {
            DynamicMessage req = DynamicMessage.parseFrom(REQUEST, message);
            String pem = (String) req.getField(REQUEST.findFieldByName("csr"));
            validity = (Long) req.getField(REQUEST.findFieldByName("validity_duration"));
            csr = new PKCS10CertificationRequest(Base64.getMimeDecoder().decode(pem
                    .replace("-----BEGIN CERTIFICATE REQUEST-----", "")
                    .replace("-----END CERTIFICATE REQUEST-----", "")));
            Status failure = failures.poll();
            if (token != null && !("Bearer " + token).equals(auth)) {
                status = Status.UNAUTHENTICATED.withDescription("authenticate failure");
            } else if (failure != null) {
                status = failure;
            } else if (!csr.isSignatureValid(new JcaContentVerifierProviderBuilder()
                    .setProvider(new BouncyCastleProvider()).build(csr.getSubjectPublicKeyInfo()))) {
                status = Status.INVALID_ARGUMENT.withDescription("the CSR's signature does not verify");
            } else {
                answer = DynamicMessage.newBuilder(RESPONSE)
                        .addRepeatedField(RESPONSE.findFieldByName("cert_chain"), sign(csr, validity))
                        .addRepeatedField(RESPONSE.findFieldByName("cert_chain"), ca.certificatePem())
                        .build().toByteArray();
            }
        } catch (Exception e) {
            status = Status.INVALID_ARGUMENT.withDescription(String.valueOf(e));
        }
        calls.add(new Call(Instant.now(), auth, clusterId, csr, validity, status));
        if (status.isOk()) {
            call.sendHeaders(new Metadata());
            call.sendMessage(answer);
        }
        call.close(status, new Metadata());
    }

    /** The certificate for the CSR's key and subject alternative names, valid for {@code seconds} from now. */
    private String sign(PKCS10CertificationRequest csr, long seconds) throws Exception {
        Extension san = sanOf(csr);
        Instant now = Instant.now();
        X509v3CertificateBuilder b = new X509v3CertificateBuilder(new X500Name("CN=test-istio-ca"),
                BigInteger.valueOf(serial.incrementAndGet()), Date.from(now.minusSeconds(60)),
                Date.from(now.plusSeconds(seconds)), new X500Name(new RDN[0]), csr.getSubjectPublicKeyInfo());
        b.addExtension(Extension.subjectAlternativeName, true, GeneralNames.getInstance(san.getParsedValue()));
        byte[] der = b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(ca.key())).getEncoded();
        return "-----BEGIN CERTIFICATE-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END CERTIFICATE-----\n";
    }

    /** The subjectAltName extension of the CSR's extension request. */
    static Extension sanOf(PKCS10CertificationRequest csr) {
        ASN1Encodable value = csr.getAttributes(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest)[0]
                .getAttrValues().getObjectAt(0);
        return Extensions.getInstance(value).getExtension(Extension.subjectAlternativeName);
    }

    /** Waits up to {@code seconds} for {@code done}. */
    static boolean await(Supplier<Boolean> done, long seconds) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < end) {
            if (done.get()) {
                return true;
            }
            Thread.sleep(20);
        }
        return done.get();
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        if (loops != null) {
            loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
        }
    }

    private static FieldDescriptorProto field(String name, int number, FieldDescriptorProto.Type type,
                                              boolean repeated) {
        return FieldDescriptorProto.newBuilder().setName(name).setNumber(number).setType(type)
                .setLabel(repeated ? FieldDescriptorProto.Label.LABEL_REPEATED
                        : FieldDescriptorProto.Label.LABEL_OPTIONAL).build();
    }
}
