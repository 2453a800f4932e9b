# Terraform and provider versions. azurerm 4.77 is the first release with everything used here:
# `storage_account_id` on azurerm_storage_table and `storage_container_id` on
# azurerm_storage_blob arrived in 4.77 (queue and share had theirs earlier), and `sku_name` on a
# Flexible scale set's per-VM public IP exists since well before. Tables, queues, shares and
# containers are created through Azure Resource Manager; only the agent blob's upload uses the
# storage data plane. `< 5.0`: a major release renames and removes arguments, so moving to it is
# a change of its own. infra/policy checks this minimum against the attributes used.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.77.0, < 5.0.0"
    }
  }
}

provider "azurerm" {
  # Subscription: ARM_SUBSCRIPTION_ID in the environment or `subscription_id` here.
  subscription_id = var.subscription_id

  # The one data-plane call, the agent blob's upload, signs with the app account's key, which
  # azurerm reads through Resource Manager (listKeys) anyway. Entra ID would need a data-plane
  # role for whoever runs Terraform, and a fresh role assignment takes minutes to apply: the
  # first apply would fail half-way. The state holds the storage keys either way (README.md).
  storage_use_azuread = false

  features {
    key_vault {
      # Soft-deleted vaults and secrets are kept (purge protection is on); never purge them
      # on destroy.
      purge_soft_delete_on_destroy    = false
      recover_soft_deleted_key_vaults = true
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
    storage {
      # Terraform manages storage through Azure Resource Manager only, so the world account's
      # firewall (VM subnet only) never blocks a plan or an apply.
      data_plane_available = false
    }
  }
}

data "azurerm_client_config" "current" {}

data "azurerm_subscription" "current" {}
