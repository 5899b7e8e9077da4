package dev.inmesh.runtime.identity;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.WireFormat;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The two messages of Istio's {@code istio.v1.auth.IstioCertificateService/CreateCertificate} in protobuf's wire
 * format, with no generated code: the request {@code IstioCertificateRequest} ({@code string csr = 1},
 * {@code int64 validity_duration = 3}, in seconds; {@code metadata = 4} is not sent) and the response
 * {@code IstioCertificateResponse} ({@code repeated string cert_chain = 1}, the leaf first and the root last).
 */
final class IstioCaMessages {
    static final int CSR = 1;
    static final int VALIDITY_DURATION = 3;
    static final int CERT_CHAIN = 1;
    /** Field 1, wire type 2 (length-delimited): the key of each {@code cert_chain} element. */
    private static final int CERT_CHAIN_TAG = CERT_CHAIN << 3 | WireFormat.WIRETYPE_LENGTH_DELIMITED;

    private IstioCaMessages() {}

    /** An {@code IstioCertificateRequest} for the PEM {@code csr}, asking for {@code validitySeconds}. */
    static Buffer request(String csr, long validitySeconds) {
        int size = CodedOutputStream.computeStringSize(CSR, csr)
                + CodedOutputStream.computeInt64Size(VALIDITY_DURATION, validitySeconds);
        byte[] out = new byte[size];
        CodedOutputStream o = CodedOutputStream.newInstance(out);
        try {
            o.writeString(CSR, csr);
            o.writeInt64(VALIDITY_DURATION, validitySeconds);
            o.checkNoSpaceLeft();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // an array sized for the message does not run out
        }
        return Buffer.buffer(out);
    }

    /** The {@code cert_chain} of an {@code IstioCertificateResponse}, in order; unknown fields are skipped. */
    static List<String> certChain(Buffer response) throws InvalidProtocolBufferException {
        CodedInputStream in = CodedInputStream.newInstance(response.getBytes());
        List<String> chain = new ArrayList<>();
        try {
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                if (tag == CERT_CHAIN_TAG) {
                    chain.add(in.readStringRequireUtf8());
                } else if (!in.skipField(tag)) {
                    break; // an end-group tag: not valid at the top level, and nothing follows it to read
                }
            }
        } catch (InvalidProtocolBufferException e) {
            throw e;
        } catch (IOException e) {
            throw new InvalidProtocolBufferException(e);
        }
        return chain;
    }
}
