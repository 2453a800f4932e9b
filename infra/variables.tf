# Inputs. Nothing here is secret: the secrets (the app's kick secret, the game server's password)
# go into Key Vault after `terraform apply` (see README.md) and never through Terraform.

# --- where -----------------------------------------------------------------------------------

variable "subscription_id" {
  description = "Azure subscription to deploy into. Null means ARM_SUBSCRIPTION_ID from the environment."
  type        = string
  default     = null
}

variable "location" {
  description = "Azure region, e.g. westeurope. Pick one with Spot capacity for var.vm_size."
  type        = string
  default     = "westeurope"
}

variable "name_prefix" {
  description = "Prefix for resource names (lowercase letters and digits, 3-10 chars)."
  type        = string
  default     = "heimdall"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,9}$", var.name_prefix))
    error_message = "name_prefix must be 3-10 lowercase letters or digits, starting with a letter."
  }
}

variable "name_suffix" {
  description = "Short unique suffix for globally unique names (storage accounts, Key Vault), e.g. 4-8 random lowercase letters/digits."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{4,8}$", var.name_suffix))
    error_message = "name_suffix must be 4-8 lowercase letters or digits."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { app = "heimdall" }
}

# --- the game server -------------------------------------------------------------------------

variable "server_id" {
  description = "Id of the game server this scale set runs; must match the Spin variable server_id."
  type        = string
  default     = "valheim"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.server_id))
    error_message = "server_id must be 1-31 lowercase letters, digits or dashes."
  }
}

variable "server_name" {
  description = "Valheim server name shown in the server browser (not secret). Must not contain the server password."
  type        = string
  default     = "Heimdall"

  validation {
    # One line: the name goes into a docker --env-file, where a newline would start a new
    # variable. No quotes, backslashes, backticks or dollar signs: shells and YAML see it too.
    condition     = length(var.server_name) >= 3 && length(var.server_name) <= 64 && !can(regex("[[:cntrl:]\"'$`\\\\]", var.server_name))
    error_message = "server_name must be 3-64 characters on one line, without control characters, quotes, backslashes, backticks or dollar signs."
  }
}

variable "world_name" {
  description = "Valheim world name (the .db/.fwl file names on the world share)."
  type        = string
  default     = "Dedicated"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,32}$", var.world_name))
    error_message = "world_name must be 1-32 letters, digits, dashes or underscores."
  }
}

variable "valheim_image" {
  description = "Container image of the game server, pinned by digest, e.g. lloesche/valheim-server@sha256:<64 hex>. A tag alone could change under a running world; infra/README.md says how to find the digest."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$", var.valheim_image))
    error_message = "valheim_image must be pinned by digest: <image>[:<tag>]@sha256:<64 lowercase hex digits>."
  }
}

variable "storage_replication_type" {
  description = "Replication of both storage accounts. GRS keeps a copy of the world (and the queues) in the paired region; LRS saves a few cents."
  type        = string
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS or GZRS."
  }
}

variable "world_share_quota_gb" {
  description = "Quota of the world file share in GiB (the world plus the image's zipped backups)."
  type        = number
  default     = 5

  validation {
    condition     = var.world_share_quota_gb >= 1 && var.world_share_quota_gb <= 100
    error_message = "world_share_quota_gb must be between 1 and 100."
  }
}

variable "world_share_soft_delete_days" {
  description = "Days a deleted world share stays recoverable (share soft delete)."
  type        = number
  default     = 14

  validation {
    condition     = var.world_share_soft_delete_days >= 1 && var.world_share_soft_delete_days <= 365
    error_message = "world_share_soft_delete_days must be between 1 and 365."
  }
}

# --- the VM ----------------------------------------------------------------------------------

variable "vm_size" {
  description = "VM size of the scale set. Must support Spot and an ephemeral OS disk with var.ephemeral_os_disk_placement."
  type        = string
  default     = "Standard_D2as_v4"
}

variable "vm_fallback_sizes" {
  description = "Sizes to try, in order, when var.vm_size has no Spot capacity (AllocationFailed, SkuNotAvailable, quota, ...). Terraform does not apply them: the app's Spin variable vm_sizes (output spin_variables) lists var.vm_size then these, and the scaler PATCHes sku.name to the next one. Each must support Spot, Gen2 images and an ephemeral OS disk with the same placement (check CachedDiskBytes/EphemeralOSDiskSupported in `az vm list-skus`)."
  type        = list(string)
  default     = ["Standard_D2s_v3", "Standard_D2ds_v4", "Standard_E2as_v4"]

  validation {
    condition     = alltrue([for s in var.vm_fallback_sizes : can(regex("^Standard_[A-Za-z0-9_]+$", s))])
    error_message = "Every fallback size must look like Standard_<size>."
  }
}

variable "zones" {
  description = "Availability zones the scale set may use (e.g. [\"1\", \"2\", \"3\"]); empty for a regional scale set. Changing this recreates the scale set."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for z in var.zones : contains(["1", "2", "3"], z)])
    error_message = "zones may contain only \"1\", \"2\" and \"3\"."
  }
}

variable "ephemeral_os_disk_placement" {
  description = "Where the ephemeral OS disk lives: CacheDisk (sizes with a cache of at least 30 GiB) or ResourceDisk (sizes with a temp disk of at least 30 GiB)."
  type        = string
  default     = "CacheDisk"

  validation {
    condition     = contains(["CacheDisk", "ResourceDisk"], var.ephemeral_os_disk_placement)
    error_message = "ephemeral_os_disk_placement must be CacheDisk or ResourceDisk."
  }
}

variable "encryption_at_host" {
  description = "Encrypt the ephemeral OS and temp disks at the host. Needs the EncryptionAtHost feature registered on the subscription (az feature register --namespace Microsoft.Compute --name EncryptionAtHost)."
  type        = bool
  default     = false
}

variable "boot_diagnostics" {
  description = "Boot diagnostics with a managed storage account (serial console and boot log; no extra account)."
  type        = bool
  default     = true
}

variable "admin_username" {
  description = "Admin user on the VM (SSH key only; no password)."
  type        = string
  default     = "heimdall"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_username)) && !contains(["root", "admin", "administrator"], var.admin_username)
    error_message = "admin_username must be a valid Linux user name and not root/admin/administrator."
  }
}

variable "admin_ssh_public_key" {
  description = "SSH public key (ssh-ed25519 or ssh-rsa) for the admin user. SSH is closed unless admin_ssh_cidrs is set."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/=]+", var.admin_ssh_public_key))
    error_message = "admin_ssh_public_key must be an ssh-ed25519 or ssh-rsa public key."
  }
}

variable "admin_ssh_cidrs" {
  description = "CIDRs allowed to reach SSH (TCP 22) on the VM. Empty (the default) keeps SSH closed."
  type        = list(string)
  default     = []

  # Narrow ranges only: refusing 0.0.0.0/0 and ::/0 by name would still let two /1s open SSH to
  # the whole internet. IPv4 /16 or narrower, IPv6 /48 or narrower, at most 8 ranges.
  validation {
    condition = length(var.admin_ssh_cidrs) <= 8 && alltrue([for c in var.admin_ssh_cidrs : can(cidrhost(c, 0)) && (
      can(regex("^[0-9.]+/(1[6-9]|2[0-9]|3[0-2])$", c)) || can(regex("^[0-9A-Fa-f:]+/(4[89]|[5-9][0-9]|1[01][0-9]|12[0-8])$", c))
    )])
    error_message = "admin_ssh_cidrs must be at most 8 CIDRs, each IPv4 /16 or narrower or IPv6 /48 or narrower (so never 0.0.0.0/0, ::/0 or a split of them)."
  }
}

variable "vnet_address_space" {
  description = "Address space of the VNet."
  type        = string
  default     = "10.42.0.0/24"

  validation {
    condition     = can(cidrhost(var.vnet_address_space, 0))
    error_message = "vnet_address_space must be a CIDR."
  }
}

# --- the agent -------------------------------------------------------------------------------

variable "agent_binary_path" {
  description = "Path to the heimdall-agent binary for x86_64 Linux, built statically by scripts/build-agent (it prints this path). Terraform uploads it to a private blob container; the VM downloads it with its managed identity and checks its SHA-256."
  type        = string

  validation {
    condition     = fileexists(var.agent_binary_path)
    error_message = "agent_binary_path must name an existing file: run scripts/build-agent and use the path it prints."
  }
}

variable "kick_url" {
  description = "Public URL of the Spin app's kick route, e.g. https://heimdall.example.net/reactions/kick. The agent POSTs here (Authorization: Bearer <app secret>) after it enqueues an event."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+/.*reactions/kick$", var.kick_url))
    error_message = "kick_url must be an https:// URL ending in /reactions/kick."
  }
}

# --- identities and access -------------------------------------------------------------------

variable "app_principal_object_id" {
  description = "Object id of the Spin app's service principal (Enterprise application object id, not the app/client id). It gets a custom role on the scale set only."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.app_principal_object_id))
    error_message = "app_principal_object_id must be a GUID."
  }
}

variable "grant_operation_status_read" {
  description = "Also give the app's service principal Microsoft.Compute/locations/operations/read at subscription scope, so the scaler can poll the Azure-AsyncOperation URL (that URL is not under the scale set). Operation statuses carry no resource data. Set false if the scaler polls the scale set itself."
  type        = bool
  default     = true
}

variable "operator_cidrs" {
  description = "Public CIDRs of whoever sets the Key Vault secrets (your workstation's IP/32). The vault accepts the VM subnet and these only."
  type        = list(string)
  default     = []

  # Key Vault's firewall takes IPv4 only. Narrow ranges, for the same reason as admin_ssh_cidrs.
  validation {
    condition = length(var.operator_cidrs) <= 8 && alltrue([for c in var.operator_cidrs : can(cidrhost(c, 0)) &&
    can(regex("^[0-9.]+/(1[6-9]|2[0-9]|3[0-2])$", c))])
    error_message = "operator_cidrs must be at most 8 IPv4 CIDRs, each /16 or narrower."
  }
}
