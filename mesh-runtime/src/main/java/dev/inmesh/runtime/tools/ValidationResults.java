package dev.inmesh.runtime.tools;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.StringValue;
import com.google.protobuf.UInt32Value;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Comparator;
import java.util.List;

/**
 * The test results of a route-check run as Envoy's {@code router_check_tool} writes them with {@code --output-path}:
 * a binary {@code envoy.RouterCheckToolSchema.ValidationResult} (test/tools/router_check/validation.proto), encoded
 * here field by field by its field numbers.
 */
final class ValidationResults {
    // ValidationResult
    private static final int TEST_RESULTS = 1;
    // ValidationItemResult
    private static final int TEST_NAME = 1;
    private static final int TEST_PASSED = 2;
    private static final int FAILURE = 3;
    // ValidationFailure: expected_* at these numbers, actual_* at the next
    private static final int REQUEST_HEADER_MATCH_FAILURES = 15;
    private static final int RESPONSE_HEADER_MATCH_FAILURES = 16;
    // HeaderMatchFailure
    private static final int HEADER_MATCHER = 1;
    private static final int ACTUAL_HEADER_VALUE = 2;

    private ValidationResults() {}

    /** The {@code ValidationResult} of these outcomes. */
    static byte[] encode(List<RouteCheck.Outcome> outcomes) {
        return message(out -> {
            for (RouteCheck.Outcome o : outcomes) {
                out.writeBytes(TEST_RESULTS, item(o));
            }
        }).toByteArray();
    }

    private static ByteString item(RouteCheck.Outcome o) {
        return message(out -> {
            out.writeString(TEST_NAME, o.name());
            if (o.passed()) {
                out.writeBool(TEST_PASSED, true);
            } else {
                out.writeBytes(FAILURE, failure(o));
            }
        });
    }

    private static ByteString failure(RouteCheck.Outcome o) {
        return message(out -> {
            List<RouteCheck.Mismatch> mismatches = o.mismatches().stream()
                    .sorted(Comparator.comparingInt(m -> expectedField(m.field()))).toList();
            for (RouteCheck.Mismatch m : mismatches) {
                int field = expectedField(m.field());
                out.writeBytes(field, value(m.field(), m.expected()));
                out.writeBytes(field + 1, value(m.field(), m.actual()));
            }
            for (RouteCheck.HeaderFailure h : o.requestHeaders()) {
                out.writeBytes(REQUEST_HEADER_MATCH_FAILURES, headerFailure(h));
            }
            for (RouteCheck.HeaderFailure h : o.responseHeaders()) {
                out.writeBytes(RESPONSE_HEADER_MATCH_FAILURES, headerFailure(h));
            }
        });
    }

    /** The number of {@code ValidationFailure.expected_*} for a field; {@code actual_*} is the next one. */
    private static int expectedField(RouteCoverage.Field f) {
        return switch (f) {
            case CLUSTER -> 1;
            case VIRTUAL_CLUSTER -> 3;
            case VIRTUAL_HOST -> 5;
            case HOST_REWRITE -> 7;
            case PATH_REWRITE -> 9;
            case PATH_REDIRECT -> 11;
            case CODE_REDIRECT -> 13;
        };
    }

    /** A {@code google.protobuf.StringValue}, or a {@code UInt32Value} for the redirect code. */
    private static ByteString value(RouteCoverage.Field f, String v) {
        return f == RouteCoverage.Field.CODE_REDIRECT ? UInt32Value.of(Integer.parseUnsignedInt(v)).toByteString()
                : StringValue.of(v).toByteString();
    }

    private static ByteString headerFailure(RouteCheck.HeaderFailure h) {
        return message(out -> {
            out.writeBytes(HEADER_MATCHER, h.matcher().toByteString());
            out.writeBytes(ACTUAL_HEADER_VALUE, StringValue.of(h.actual()).toByteString());
        });
    }

    private interface Fields {
        void write(CodedOutputStream out) throws IOException;
    }

    private static ByteString message(Fields fields) {
        ByteString.Output bytes = ByteString.newOutput();
        CodedOutputStream out = CodedOutputStream.newInstance(bytes);
        try {
            fields.write(out);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteString();
    }
}
