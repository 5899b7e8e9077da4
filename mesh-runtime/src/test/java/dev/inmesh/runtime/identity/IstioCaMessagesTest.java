package dev.inmesh.runtime.identity;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayOutputStream;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The two messages of CreateCertificate in protobuf's wire format. */
class IstioCaMessagesTest {

    @Test
    void theRequestCarriesTheCsrAsFieldOneAndTheValidityInSecondsAsFieldThree() {
        byte[] bytes = IstioCaMessages.request("CSR", 86_400).getBytes();
        // 0a 03 "CSR", then 18 (field 3, varint) 86400 = 80 a3 05
        assertArrayEquals(HexFormat.of().parseHex("0a03435352" + "1880a305"), bytes);
    }

    @Test
    void theResponseGivesItsChainInOrderAndSkipsFieldsItDoesNotKnow() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        CodedOutputStream o = CodedOutputStream.newInstance(out);
        o.writeString(1, "leaf");
        o.writeInt64(7, 42);
        o.writeString(9, "something newer");
        o.writeString(1, "intermediate");
        o.writeFixed32(11, 5);
        o.writeString(1, "root");
        o.flush();
        assertEquals(List.of("leaf", "intermediate", "root"),
                IstioCaMessages.certChain(Buffer.buffer(out.toByteArray())));
        assertEquals(List.of(), IstioCaMessages.certChain(Buffer.buffer()));
    }

    @Test
    void aTruncatedResponseIsRefused() {
        assertThrows(InvalidProtocolBufferException.class,
                () -> IstioCaMessages.certChain(Buffer.buffer(HexFormat.of().parseHex("0a0a6c656166"))));
    }
}
