import NIOSSL
import Testing

@testable import Shared

@Suite("PostgreSQL sslmode")
struct PostgresTLSTests {
    @Test(
        "sslmode maps as libpq's: disable none, allow/prefer optional unchecked, require unchecked, verify-* checked",
        arguments: [
            (PostgresSSLMode.disable, nil, nil),
            (.allow, false, CertificateVerification.none),
            (.prefer, false, CertificateVerification.none),
            (.require, true, CertificateVerification.none),
            (.verifyCA, true, CertificateVerification.noHostnameVerification),
            (.verifyFull, true, CertificateVerification.fullVerification),
        ] as [(PostgresSSLMode, Bool?, CertificateVerification?)])
    func policy(mode: PostgresSSLMode, required: Bool?, verification: CertificateVerification?) {
        let policy = PostgresProxyDatabase.tlsPolicy(mode)
        #expect(policy?.required == required)
        #expect(policy?.configuration.certificateVerification == verification)
    }
}
