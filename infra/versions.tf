# Terraform and provider versions. azurerm 4.47+ is needed for `storage_account_id` on
# azurerm_storage_queue/azurerm_storage_table/azurerm_storage_share (created through Azure
# Resource Manager, so `terraform apply` needs no data-plane access to the storage accounts).
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.47"
    }
  }
}

provider "azurerm" {
  # Subscription: ARM_SUBSCRIPTION_ID in the environment or `subscription_id` here.
  subscription_id = var.subscription_id

  # Should the provider ever need the storage data plane, it uses Entra ID, never a key.
  storage_use_azuread = true

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
