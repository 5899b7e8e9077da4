package dev.inmesh.runtime.upstream;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.WireFormat;
import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The two messages of {@code grpc.health.v1.Health/Check}, framed as gRPC sends them (a flag byte, a 4-byte
 * big-endian length, the message). Written by hand with protobuf's coded streams: the generated classes live in
 * grpc-services, which Inmesh does not otherwise need, and each message has one field ({@code HealthCheckRequest}'s
 * {@code string service = 1}, {@code HealthCheckResponse}'s {@code ServingStatus status = 1}).
 */
final class GrpcHealthMessages {
    /** {@code HealthCheckResponse.ServingStatus.SERVING}. */
    static final int SERVING = 1;
    /**
     * The largest response message a check reads, gRPC's default maximum message size (4 MiB): a frame that says it
     * is larger fails the check without being read (Envoy's decoder buffers any size; a check here holds no more).
     */
    static final int MAX_MESSAGE = 4 * 1024 * 1024;
    private static final int PREFIX = 5;

    private GrpcHealthMessages() {}

    /** A framed {@code HealthCheckRequest} for {@code service} (no field when empty, as Envoy leaves it unset). */
    static Buffer request(String service) {
        try {
            ByteArrayOutputStream message = new ByteArrayOutputStream();
            CodedOutputStream out = CodedOutputStream.newInstance(message);
            if (!service.isEmpty()) {
                out.writeString(1, service);
            }
            out.flush();
            return Buffer.buffer().appendByte((byte) 0).appendInt(message.size()).appendBytes(message.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a byte array does not fail
        }
    }

    /**
     * Reads a check's response body as it comes, as Envoy's session decodes it: the check cannot pass once the body
     * holds a compressed (or otherwise flagged) frame, a second non-empty message (the call is unary), a message that
     * does not parse, or a frame over {@link #MAX_MESSAGE}. An empty message is skipped, as Envoy's decoder does.
     */
    static final class ResponseReader {
        private Buffer pending = Buffer.buffer();
        private Integer status; // of the one message read, if any
        private boolean broken;

        /** Adds {@code chunk}; false once the response cannot pass (the rest need not be read). */
        boolean feed(Buffer chunk) {
            if (broken) {
                return false;
            }
            pending.appendBuffer(chunk);
            while (pending.length() >= PREFIX) {
                long length = pending.getUnsignedInt(1);
                if (pending.getByte(0) != 0 || length > MAX_MESSAGE) {
                    broken = true;
                    return false;
                }
                if (pending.length() < PREFIX + length) {
                    return true;
                }
                Buffer message = pending.getBuffer(PREFIX, PREFIX + (int) length);
                pending = pending.getBuffer(PREFIX + (int) length, pending.length());
                if (length > 0 && (status != null || !parse(message.getBytes()))) {
                    broken = true;
                    return false;
                }
            }
            return true;
        }

        private boolean parse(byte[] message) {
            try {
                CodedInputStream in = CodedInputStream.newInstance(message);
                int s = 0; // proto3's default, UNKNOWN
                for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                    if (WireFormat.getTagFieldNumber(tag) == 1
                            && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_VARINT) {
                        s = in.readEnum();
                    } else {
                        in.skipField(tag);
                    }
                }
                status = s;
                return true;
            } catch (IOException e) {
                return false;
            }
        }

        /** Whether the body held one message, whose status is {@code SERVING}, and nothing that fails the check. */
        boolean serving() {
            return !broken && status != null && status == SERVING;
        }
    }
}
