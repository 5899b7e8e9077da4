package dev.inmesh.runtime.identity;

import dev.inmesh.api.MeshOptions;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.HexFormat;

/**
 * A new key and its PKCS#10 certificate signing request (RFC 2986) for a SPIFFE identity, as Istio's agent makes
 * them: RSA 2048 signed with SHA-256 (or ECDSA P-256 with SHA-256), no subject, and the identity as the only subject
 * alternative name, a URI, in an extension request marked critical (RFC 5280 4.2.1.6 requires it with an empty
 * subject). Blocking work (key generation): run it off the event loop.
 *
 * @param key the key pair
 * @param csrPem the request, PEM {@code CERTIFICATE REQUEST}
 * @param keyPem the private key, PEM {@code PRIVATE KEY} (PKCS#8)
 */
record WorkloadCsr(KeyPair key, String csrPem, String keyPem) {
    private static final HexFormat HEX = HexFormat.of();
    /** OID 1.2.840.113549.1.1.11, sha256WithRSAEncryption, with its NULL parameters. */
    private static final byte[] SHA256_WITH_RSA = der(0x30, HEX.parseHex("06092a864886f70d01010b0500"));
    /** OID 1.2.840.10045.4.3.2, ecdsa-with-SHA256, with no parameters. */
    private static final byte[] ECDSA_WITH_SHA256 = der(0x30, HEX.parseHex("06082a8648ce3d040302"));
    /** OID 1.2.840.113549.1.9.14, PKCS#9 extensionRequest. */
    private static final byte[] EXTENSION_REQUEST = HEX.parseHex("06092a864886f70d01090e");
    /** OID 2.5.29.17, subjectAltName. */
    private static final byte[] SUBJECT_ALT_NAME = HEX.parseHex("0603551d11");
    private static final byte[] TRUE = HEX.parseHex("0101ff");
    private static final byte[] VERSION_1 = HEX.parseHex("020100");
    private static final byte[] EMPTY_NAME = HEX.parseHex("3000");

    static WorkloadCsr create(MeshOptions.IdentityKeyType type, String spiffeId) throws GeneralSecurityException {
        boolean rsa = type == MeshOptions.IdentityKeyType.RSA;
        KeyPairGenerator g = KeyPairGenerator.getInstance(rsa ? "RSA" : "EC");
        if (rsa) {
            g.initialize(2048);
        } else {
            g.initialize(new ECGenParameterSpec("secp256r1"));
        }
        KeyPair key = g.generateKeyPair();
        // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String
        byte[] san = der(0x30, der(0x86, spiffeId.getBytes(StandardCharsets.US_ASCII)));
        byte[] extension = der(0x30, SUBJECT_ALT_NAME, TRUE, der(0x04, san));
        byte[] attribute = der(0x30, EXTENSION_REQUEST, der(0x31, der(0x30, extension)));
        byte[] info = der(0x30, VERSION_1, EMPTY_NAME, key.getPublic().getEncoded(), der(0xa0, attribute));
        Signature signer = Signature.getInstance(rsa ? "SHA256withRSA" : "SHA256withECDSA");
        signer.initSign(key.getPrivate());
        signer.update(info);
        byte[] signature = signer.sign();
        byte[] bits = new byte[signature.length + 1]; // no unused bits
        System.arraycopy(signature, 0, bits, 1, signature.length);
        byte[] csr = der(0x30, info, rsa ? SHA256_WITH_RSA : ECDSA_WITH_SHA256, der(0x03, bits));
        return new WorkloadCsr(key, pem("CERTIFICATE REQUEST", csr), pem("PRIVATE KEY", key.getPrivate().getEncoded()));
    }

    /** A DER element: {@code tag}, the definite length of the contents, the contents (the parts one after another). */
    static byte[] der(int tag, byte[]... contents) {
        int length = 0;
        for (byte[] c : contents) {
            length += c.length;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(length + 6);
        out.write(tag);
        if (length < 0x80) {
            out.write(length);
        } else {
            int octets = (32 - Integer.numberOfLeadingZeros(length) + 7) / 8;
            out.write(0x80 | octets);
            for (int shift = 8 * (octets - 1); shift >= 0; shift -= 8) {
                out.write(length >>> shift);
            }
        }
        for (byte[] c : contents) {
            out.writeBytes(c);
        }
        return out.toByteArray();
    }

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
