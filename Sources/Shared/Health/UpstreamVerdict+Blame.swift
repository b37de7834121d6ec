extension UpstreamVerdict {
    /// Whether a 401 or 403 blames the request rather than the key, so that it goes back to the client as
    /// it came and marks nothing. Every key would refuse such a request (or the client can fix it), so
    /// marking keys for it would let one client take the whole pool out of rotation.
    ///
    /// What OpenAI answers, as reported in the wild (we found no official catalogue of error codes):
    /// - 401 `mismatched_organization` "OpenAI-Organization header should match organization for API key"
    ///   (e.g. github.com/microsoft/foundry-dev-tools/issues/262, github.com/Realiserad/fish-ai/issues/62);
    ///   `mismatched_project` is its `OpenAI-Project` twin.
    /// - 401, code null: "You have insufficient permissions for this operation. Missing scopes: model.request.
    ///   Check that you have the correct role …" for an endpoint a restricted key may not call
    ///   (community.openai.com/t/restricted-api-keys-are-broken-for-the-responses-api/1292912,
    ///   community.openai.com/t/api-key-permissions-ui-model-request-scope-only-appears-…/1374480).
    /// - 403 `model_not_found` "Project `proj_…` does not have access to model `gpt-4o-mini`"
    ///   (github.com/Aider-AI/aider/issues/1903, github.com/cursor/cursor/issues/2953); 404 `model_not_found`
    ///   is the request's already.
    /// - 403 `unsupported_country_region_territory`: the gateway's address, the same for every key.
    /// The key's own: 401 `invalid_api_key` "Incorrect API key provided: sk-…", `account_deactivated`,
    /// "You must be a member of an organization to use the API" (help.openai.com/en/articles/6882433,
    /// platform.openai.com/docs/guides/error-codes), and a 401 or 403 with no recognisable body.
    static func blamesRequest(_ error: ErrorFields) -> Bool {
        if let code = error.code {
            if keyCodes.contains(code) { return false }
            if requestCodes.contains(code) { return true }
        }
        guard let message = error.message else { return false }
        if message.hasPrefix("Incorrect API key") { return false }
        return requestMessages.contains { message.contains($0) }
    }

    /// Codes that say the key itself is refused, whatever the message.
    private static let keyCodes: Set<String> = [
        "invalid_api_key", "account_deactivated", "invalid_organization", "no_organization", "organization_deactivated",
    ]

    /// Codes that blame the request (its headers, its model) or the gateway's location.
    private static let requestCodes: Set<String> = [
        "mismatched_organization", "mismatched_project", "model_not_found", "unsupported_country_region_territory",
    ]

    /// Parts of messages that blame the request when the code does not say.
    private static let requestMessages = [
        "Missing scopes:", "insufficient permissions for this operation", "does not have access to model",
        "header should match",
    ]
}
