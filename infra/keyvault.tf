# Key Vault (RBAC mode) for the VM's boot secrets, and nothing else:
#   heimdall-app-secret      the app's kick secret (Spin variable app_secret); the agent sends
#                            it as "Authorization: Bearer" to kick_url
#   valheim-server-password  the game server's join password
# Terraform creates neither value (they would end up in the state); the owner sets them once
# with `az keyvault secret set` (README.md). At boot the VM reads them with its managed identity
# (IMDS token for https://vault.azure.net -> Key Vault REST) into root-only files.

locals {
  key_vault_name         = "${var.name_prefix}-kv-${var.name_suffix}"
  app_secret_name        = "heimdall-app-secret"
  server_password_secret = "valheim-server-password"
  key_vault_secret_names = [local.app_secret_name, local.server_password_secret]
}

resource "azurerm_key_vault" "main" {
  name                = local.key_vault_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tenant_id           = data.azurerm_client_config.current.tenant_id
  sku_name            = "standard"
  tags                = var.tags

  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 7
  public_network_access_enabled = true

  # Reachable from the VM subnet (service endpoint) and from the operator's address only.
  network_acls {
    default_action             = "Deny"
    bypass                     = "AzureServices"
    virtual_network_subnet_ids = [azurerm_subnet.vm.id]
    ip_rules                   = var.operator_cidrs
  }
}

# Whoever runs Terraform may set the two secrets (and only manage secrets, not read keys or
# certificates).
resource "azurerm_role_assignment" "operator_kv_secrets_officer" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}
