// JSON calls to the annotation API with the session cookie and the CSRF token of the page.

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// DRF answers {"detail": "..."} or {"field": ["msg", ...]}: flatten either into one sentence.
function describeError(status, data) {
  if (data && typeof data === "object") {
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.join(" ");
    const parts = [];
    for (const [field, value] of Object.entries(data)) {
      const text = Array.isArray(value) ? value.join(" ") : typeof value === "object" ? JSON.stringify(value) : String(value);
      parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
    }
    if (parts.length) return parts.join("; ");
  }
  if (status === 0) return "The server could not be reached. Check your connection and try again.";
  return `The server answered ${status}.`;
}

export async function request(method, url, body = undefined, { keepalive = false } = {}) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  } catch (error) {
    throw new ApiError(0, describeError(0, null), null);
  }
  if (response.status === 204) return null;
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    data = await response.json();
  }
  if (!response.ok) throw new ApiError(response.status, describeError(response.status, data), data);
  return data;
}

export function urlFor(template, placeholder, id) {
  return template.replace(placeholder, String(id));
}
