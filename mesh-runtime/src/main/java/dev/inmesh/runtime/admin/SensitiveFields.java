package dev.inmesh.runtime.admin;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.inmesh.runtime.xds.EnvoyJson;
import java.nio.charset.StandardCharsets;
import udpa.annotations.Sensitive;

/**
 * Envoy's redaction of the configuration its admin dumps: a field annotated {@code (udpa.annotations.sensitive)} (a
 * TLS certificate's {@code private_key}, a generic secret, ...) and everything under it shows {@code [redacted]} for
 * a string or bytes and nothing for any other value, inside the {@code Any}s of known types too.
 */
final class SensitiveFields {
    static final String REDACTED = "[redacted]";
    private static final String ANY = Any.getDescriptor().getFullName();
    private static final ByteString REDACTED_BYTES = ByteString.copyFrom(REDACTED, StandardCharsets.UTF_8);

    private SensitiveFields() {}

    /** The message with its sensitive fields redacted; the message itself when it has none set. */
    static Message redact(Message m) {
        return redact(m, false);
    }

    private static Message redact(Message m, boolean sensitive) {
        if (m.getDescriptorForType().getFullName().equals(ANY)) {
            return redactAny(m, sensitive); // an Any inside a message read from an Any is a DynamicMessage
        }
        Message.Builder b = null;
        for (FieldDescriptor f : m.getDescriptorForType().getFields()) {
            boolean secret = sensitive || f.getOptions().getExtension(Sensitive.sensitive);
            if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
                // a map's keys are names, not secrets: only its values take the field's sensitivity
                boolean mapEntry = f.isMapField();
                if (f.isRepeated()) {
                    for (int i = 0; i < m.getRepeatedFieldCount(f); i++) {
                        Message v = (Message) m.getRepeatedField(f, i);
                        Message r = mapEntry ? redactMapEntry(v, secret) : redact(v, secret);
                        if (r != v) {
                            b = b == null ? m.toBuilder() : b;
                            b.setRepeatedField(f, i, r);
                        }
                    }
                } else if (m.hasField(f)) {
                    Message v = (Message) m.getField(f);
                    Message r = redact(v, secret);
                    if (r != v) {
                        b = b == null ? m.toBuilder() : b;
                        b.setField(f, r);
                    }
                }
            } else if (secret && (f.isRepeated() ? m.getRepeatedFieldCount(f) > 0 : m.hasField(f))) {
                b = b == null ? m.toBuilder() : b;
                redactValue(b, f);
            }
        }
        return b == null ? m : b.build();
    }

    private static Message redactMapEntry(Message entry, boolean sensitive) {
        FieldDescriptor value = entry.getDescriptorForType().findFieldByName("value");
        if (value.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
            Message v = (Message) entry.getField(value);
            Message r = redact(v, sensitive);
            return r == v ? entry : entry.toBuilder().setField(value, r).build();
        }
        if (!sensitive) {
            return entry;
        }
        Message.Builder b = entry.toBuilder();
        redactValue(b, value);
        return b.build();
    }

    /** A string or bytes becomes {@code [redacted]}, each of them when repeated; any other value is cleared. */
    private static void redactValue(Message.Builder b, FieldDescriptor f) {
        Object text = switch (f.getJavaType()) {
            case STRING -> REDACTED;
            case BYTE_STRING -> REDACTED_BYTES;
            default -> null;
        };
        if (text == null) {
            b.clearField(f);
        } else if (f.isRepeated()) {
            for (int i = 0; i < b.getRepeatedFieldCount(f); i++) {
                b.setRepeatedField(f, i, text);
            }
        } else {
            b.setField(f, text);
        }
    }

    /** An {@code Any} of a known type, redacted inside; one of an unknown type stays as it is. */
    private static Message redactAny(Message any, boolean sensitive) {
        Descriptor d = any.getDescriptorForType();
        FieldDescriptor typeUrl = d.findFieldByName("type_url");
        FieldDescriptor value = d.findFieldByName("value");
        String url = (String) any.getField(typeUrl);
        Descriptor type = url.isEmpty() ? null : EnvoyJson.descriptor(url);
        if (type == null) {
            return any;
        }
        try {
            Message inside = DynamicMessage.parseFrom(type, (ByteString) any.getField(value));
            Message r = redact(inside, sensitive);
            return r == inside ? any : any.toBuilder().setField(value, r.toByteString()).build();
        } catch (InvalidProtocolBufferException e) {
            return any;
        }
    }
}
