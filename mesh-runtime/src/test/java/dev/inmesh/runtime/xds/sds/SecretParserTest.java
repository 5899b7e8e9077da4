package dev.inmesh.runtime.xds.sds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import java.util.List;
import org.junit.jupiter.api.Test;

class SecretParserTest {
    private static String refusal(DataSource ca) {
        Secret s = Secret.newBuilder().setName("ROOTCA")
                .setValidationContext(CertificateValidationContext.newBuilder().setTrustedCa(ca)).build();
        return assertThrows(IllegalArgumentException.class, () -> SecretParser.parse("ROOTCA", List.of(Any.pack(s))))
                .getMessage();
    }

    /** A secret's files and environment variables are read as any DataSource, and named as such when they fail. */
    @Test
    void aSecretsDataSourcesAreReadAsAnyOthersAndNamedWithoutJavaClassNames() {
        assertEquals("validation_context.trusted_ca.filename: cannot read \"/nonexistent/ca.pem\": "
                + "no such file", refusal(DataSource.newBuilder().setFilename("/nonexistent/ca.pem").build()));
        assertEquals("validation_context.trusted_ca.environment_variable: "
                + "\"INMESH_TEST_UNSET_VARIABLE\" is not set",
                refusal(DataSource.newBuilder().setEnvironmentVariable("INMESH_TEST_UNSET_VARIABLE").build()));
    }
}
