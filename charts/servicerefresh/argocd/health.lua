-- Argo CD health check for gisops.io/ServiceRefresh: the body of
-- resource.customizations.health.gisops.io_ServiceRefresh in argocd-cm.
-- Maps the resource's kstatus conditions (Ready / Reconciling / Stalled) and phase to Argo CD
-- health: Stalled -> Degraded, Cancelled or Suspended -> Suspended, Reconciling (Queued,
-- Running) -> Progressing, Ready (Succeeded, AwaitingTrigger) -> Healthy. Lua 5.1, as Argo CD
-- runs it.
local hs = {}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- "Reason: message" from a condition, or the fallback when it has neither.
local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif message ~= "" then
    return message
  elseif reason ~= "" then
    return reason
  end
  return fallback
end

local status = obj.status
if status == nil or (status.phase == nil and status.conditions == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the ServiceRefresh"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local phase = status.phase
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")
local stalled = condition(status, "Stalled")

-- kstatus first: the conditions say what the resource needs now; the phase says how the last
-- run went (it stays Succeeded when a trigger ConfigMap disappears afterwards, and a
-- runOnCreate: false resource has none until its first run).
if phase == "Cancelled" then
  -- Stalled RunCancelled: a person stopped the run on purpose. That is no degradation of the
  -- application; the remaining Deployments were not restarted, which the message says, and
  -- the next trigger or `servicerefresh start` starts a new run.
  hs.status = "Suspended"
  local message = nil
  if is_true(stalled) and stalled.message ~= nil and stalled.message ~= "" then
    message = stalled.message
  elseif status.run ~= nil and status.run.message ~= nil then
    message = status.run.message
  elseif ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    message = ready.message
  end
  hs.message = "Cancelled on request: " .. (message or "run cancelled")
    .. "; the next trigger or servicerefresh start begins a new run"
elseif is_true(stalled) then
  -- RunFailed, NothingSelected, InvalidSpec, CrossNamespaceRefused, NamespaceNotWatched,
  -- KindNotWatched, ConfigMapNotFound, SecretNotFound, SecretsNotWatched, RestartStorm,
  -- Forbidden: the message says what to fix.
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
elseif phase == "Suspended" or (is_true(reconciling) and reconciling.reason == "Suspended") then
  hs.status = "Suspended"
  hs.message = describe(reconciling, "Suspended by spec.suspend")
elseif is_true(reconciling) then
  -- Queued (waiting for a run slot) or Running.
  hs.status = "Progressing"
  hs.message = describe(reconciling, phase or "Reconciling")
elseif is_true(ready) then
  -- Succeeded, or AwaitingTrigger (runOnCreate: false, no run yet).
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Run succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Run failed")
elseif phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, phase)
elseif phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the ServiceRefresh"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
