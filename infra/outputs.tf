# Outputs. None is secret: no storage key, no connection string, no secret value is output.
# The Spin app's secrets are set by hand (README.md, "Spin variables").

output "resource_group_name" {
  description = "Resource group of everything Heimdall created."
  value       = azurerm_resource_group.main.name
}

output "vmss_id" {
  description = "Resource id of the game server's scale set."
  value       = azurerm_orchestrated_virtual_machine_scale_set.valheim.id
}

output "vmss_name" {
  description = "Name of the game server's scale set (Spin variable vmss_name)."
  value       = azurerm_orchestrated_virtual_machine_scale_set.valheim.name
}

output "vm_principal_id" {
  description = "Object id of the VM's user-assigned managed identity."
  value       = local.vm_principal_id
}

output "agent_blob_url" {
  description = "URL of the agent binary in its private container (readable by the VM's identity only)."
  value       = azurerm_storage_blob.agent.url
}

output "agent_sha256" {
  description = "SHA-256 of the uploaded agent binary; the VM refuses a download that does not match."
  value       = local.agent_sha256
}

output "storage_account_name" {
  description = "The app's storage account (queues and table)."
  value       = azurerm_storage_account.app.name
}

output "queue_endpoint" {
  description = "Queue service origin, e.g. https://<account>.queue.core.windows.net."
  value       = trimsuffix(azurerm_storage_account.app.primary_queue_endpoint, "/")
}

output "table_endpoint" {
  description = "Table service origin, e.g. https://<account>.table.core.windows.net."
  value       = trimsuffix(azurerm_storage_account.app.primary_table_endpoint, "/")
}

output "queue_names" {
  description = "Queues in the app's storage account."
  value = {
    events        = azurerm_storage_queue.events.name
    events_poison = azurerm_storage_queue.events_poison.name
    commands      = azurerm_storage_queue.commands.name
    control       = azurerm_storage_queue.control.name
  }
}

output "table_name" {
  description = "Table with the game servers' state."
  value       = azurerm_storage_table.servers.name
}

output "world_storage_account_name" {
  description = "Storage account that holds only the world share."
  value       = azurerm_storage_account.world.name
}

output "world_share_name" {
  description = "Azure Files share with the Valheim world (mounted on the VM at /srv/valheim)."
  value       = azurerm_storage_share.worlds.name
}

output "key_vault_name" {
  description = "Key Vault for the VM's boot secrets."
  value       = azurerm_key_vault.main.name
}

output "key_vault_uri" {
  description = "Key Vault URI."
  value       = azurerm_key_vault.main.vault_uri
}

output "key_vault_secret_names" {
  description = "Secrets to set in the Key Vault after apply (names only)."
  value = {
    app_secret      = local.app_secret_name
    server_password = local.server_password_secret
  }
}

output "spin_variables" {
  description = "Non-secret Spin variables for spin.toml (SPIN_VARIABLE_<NAME> or your host's provider)."
  value = {
    storage_account       = azurerm_storage_account.app.name
    queue_endpoint        = trimsuffix(azurerm_storage_account.app.primary_queue_endpoint, "/")
    table_endpoint        = trimsuffix(azurerm_storage_account.app.primary_table_endpoint, "/")
    server_id             = var.server_id
    game_port             = "2456"
    azure_tenant_id       = data.azurerm_client_config.current.tenant_id
    azure_subscription_id = data.azurerm_subscription.current.subscription_id
    azure_resource_group  = azurerm_resource_group.main.name
    vmss_name             = azurerm_orchestrated_virtual_machine_scale_set.valheim.name
    # The spot sizes to try, in order: the scale set's own, then the fallbacks.
    vm_sizes = join(",", concat([var.vm_size], var.vm_fallback_sizes))
  }
}

output "spin_variables_set_by_hand" {
  description = "Spin variables Terraform does not know or never outputs (secrets, the Discord app, the service principal); see README.md."
  value       = ["storage_key", "app_secret", "azure_client_id", "azure_client_secret", "discord_application_id", "discord_public_key", "discord_bot_token"]
}
