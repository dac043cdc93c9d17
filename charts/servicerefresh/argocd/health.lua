-- Argo CD health check for gisops.io/ServiceRefresh: the body of
-- resource.customizations.health.gisops.io_ServiceRefresh in argocd-cm.
-- Maps the resource's phase and kstatus conditions (Ready / Reconciling / Stalled) to
-- Healthy / Progressing / Degraded / Suspended. Lua 5.1, as Argo CD runs it.
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
if status == nil or status.phase == nil then
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

local phase = status.phase
local stalled = condition(status, "Stalled")

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(condition(status, "Ready"), "Run succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Run failed")
elseif phase == "Cancelled" then
  hs.status = "Degraded"
  local message = nil
  if stalled ~= nil and stalled.status == "True" then
    message = describe(stalled, nil)
  end
  if message == nil and status.run ~= nil and status.run.message ~= nil then
    message = "Cancelled: " .. status.run.message
  end
  hs.message = message or describe(condition(status, "Ready"), "Run cancelled")
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe(condition(status, "Reconciling"), "Suspended by spec.suspend")
elseif phase == "Pending" or phase == "Running" then
  -- kstatus: Stalled=True wins over an ongoing phase (the resource needs a person).
  if stalled ~= nil and stalled.status == "True" then
    hs.status = "Degraded"
    hs.message = describe(stalled, "Stalled")
  else
    hs.status = "Progressing"
    hs.message = describe(condition(status, "Reconciling"), phase)
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
